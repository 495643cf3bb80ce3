// The wallboard: live counts from confctl's public API and live stream (rules: entry/wallboard.py).
//
// Signing in, the stream and the re-reads are session.js's (shared with the console): the initial state is
// /v1/conferences (live ones, and those completed today); then every event on /v1/stream re-reads its
// conference, and each held customer's hold start is read from its conference's timeline. This page counts.
import { ROOT, SignedOut, createSession, dayStart, joined } from "./session.js";

const STORAGE_KEY = "confctl.wallboard.token";

// What tests (and a curious operator) can read: the counts as shown, and whether the first state is in.
window.wallboard = { ready: false, counts: null };

async function api(path) {
  const response = await fetch(ROOT + path, { headers: { Authorization: "Bearer " + session.token } });
  if (response.status === 401 || response.status === 403) throw new SignedOut(String(response.status));
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function reread(id) {
  const doc = await api(`/v1/conferences/${encodeURIComponent(id)}`);
  if (doc) {
    await session.readHolds(doc);
    session.conferences.set(id, doc);
  }
  render();
}

const session = createSession({
  name: "wallboard", storageKey: STORAGE_KEY, get: api, reread,
  loaded: () => {
    window.wallboard.ready = true;
    render();
  },
  signedIn: () => {
    window.wallboard.ready = false;
  },
});

function count(now) {
  const day = dayStart(now);
  const counts = {
    live: 0, waiting: 0, on_hold: 0, in_transfer: 0, longest_hold: 0,
    transfers_completed: 0, transfers_failed: 0, supervisors: 0,
  };
  for (const doc of session.conferences.values()) {
    for (const transfer of doc.transfers) {
      if (transfer.ended_at && new Date(transfer.ended_at) >= day) {
        if (transfer.state === "completed") counts.transfers_completed += 1;
        if (transfer.state === "failed") counts.transfers_failed += 1;
      }
    }
    if (doc.status === "completed") continue;
    counts.live += 1;
    const talking = joined(doc, "agent").length + joined(doc, "external").length > 0;
    for (const customer of joined(doc, "customer")) {
      if (customer.hold) counts.on_hold += 1;
      else if (!talking) counts.waiting += 1;
    }
    if (doc.transfers.some((t) => t.state === "dialing" || t.state === "consulting")) counts.in_transfer += 1;
    counts.supervisors += joined(doc, "supervisor").length;
  }
  for (const [id, holds] of session.holdSince) {
    if (!session.conferences.has(id)) continue;
    for (const start of holds.starts) {
      counts.longest_hold = Math.max(counts.longest_hold, Math.floor((now - start) / 1000));
    }
  }
  return counts;
}

function duration(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = String(seconds % 60).padStart(2, "0");
  return minutes >= 60 ? `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}:${rest}`
    : `${minutes}:${rest}`;
}

function render() {
  if (!window.wallboard.ready) return;
  const counts = count(new Date());
  for (const [name, value] of Object.entries(counts)) {
    const output = document.querySelector(`[data-count="${name}"]`);
    if (!output) continue;
    if (name === "longest_hold") {
      output.dataset.seconds = String(value);
      output.textContent = duration(value);
      output.setAttribute("aria-description", `${value} seconds`);
    } else {
      output.textContent = String(value);
    }
    output.dataset.alert = String(name === "waiting" || name === "transfers_failed" ? value > 0 : false);
  }
  window.wallboard.counts = counts;
}

function boot() {
  session.begin();
  setInterval(render, 1000); // the longest hold ticks; "today" rolls over at midnight UTC
}

// A module runs once the page is parsed; the check keeps it right if it is ever loaded later.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
