// The wallboard: live counts from confctl's public API and live stream (rules: entry/wallboard.py).
//
// Signs in with a browser token (POST /v1/tokens): from the URL fragment `#token=...` (removed from the address
// bar at once) or the sign-in form; kept only in this tab's sessionStorage. The initial state is
// /v1/conferences (live ones, and those completed today); then every event on /v1/stream re-reads its
// conference. The stream starts after the position the page was served at (the <body>'s data-after), and
// EventSource resumes a dropped stream with Last-Event-ID by itself. A read that fails (no answer, a 5xx) is read
// again after a pause that grows with each failure, and at once when the stream opens again: the event that asked
// for it is behind the stream's position by then, so nothing else would. The status is live again once the
// stream is open and nothing waits to be read again.
"use strict";
(() => {
  const EVENT_TYPES = [
    "announcement.failed", "announcement.played", "announcement.requested", "call.status_changed",
    "command.failed", "command.succeeded", "conference.corrected", "conference.created",
    "conference.end_requested", "conference.ended", "conference.started", "participant.corrected",
    "participant.dial_failed", "participant.dial_requested", "participant.dialed", "participant.held",
    "participant.joined", "participant.left", "participant.modified", "participant.muted",
    "participant.removal_requested", "participant.unheld", "participant.unmuted", "participant.update_requested",
    "participant.updated", "recording.status_changed", "recording.update_requested", "recording.updated",
    "transfer.cancelled", "transfer.completed", "transfer.consulting", "transfer.failed",
    "transfer.fallback_dialed", "transfer.requested",
  ];
  const PAGE = 200;
  const STORAGE_KEY = "confctl.wallboard.token";
  // Behind a proxy serving confctl under a prefix (`serve --root-path`) every API path starts with it.
  const ROOT = document.body.dataset.root || "";

  const conferences = new Map(); // id -> document
  const holdSince = new Map(); // id -> {key: labels held, starts: [Date]}
  const reading = new Map(); // id -> promise of a re-read in flight
  const again = new Set(); // ids with an event since their re-read started
  const stale = new Map(); // id -> {attempt, timer}: conferences whose last read failed, to be read again
  const RETRY_MS = [500, 1000, 2000, 4000, 8000]; // the pause before the 1st, 2nd, … retry of a read (then 8 s)
  let loadTimer = null; // the next try of the lists, after they failed
  let session = 0; // counts sign-ins and sign-outs: a retry timer of an earlier session does nothing
  let token = null;
  let source = null;
  let lastId = null;

  // What tests (and a curious operator) can read: the counts as shown, and whether the first state is in.
  window.wallboard = { ready: false, counts: null };

  const $ = (selector) => document.querySelector(selector);

  function setStatus(state, text) {
    const status = $("#status");
    status.dataset.state = state;
    status.textContent = text;
  }

  function dayStart(now) {
    const day = new Date(now);
    day.setUTCHours(0, 0, 0, 0);
    return day;
  }

  class SignedOut extends Error {}

  async function api(path) {
    const response = await fetch(ROOT + path, { headers: { Authorization: "Bearer " + token } });
    if (response.status === 401 || response.status === 403) throw new SignedOut(String(response.status));
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.json();
  }

  async function listAll(status, since) {
    const found = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ status, limit: String(PAGE) });
      if (cursor) query.set("cursor", cursor);
      const page = await api("/v1/conferences?" + query);
      for (const item of page.items) {
        if (since && item.created_at && new Date(item.created_at) < since) return found;
        found.push(item);
      }
      cursor = page.next_cursor;
    } while (cursor);
    return found;
  }

  const joined = (doc, role) => doc.participants.filter((p) => p.role === role && p.status === "joined");

  function heldCustomers(doc) {
    if (doc.status === "completed") return [];
    return joined(doc, "customer").filter((p) => p.hold).map((p) => p.label);
  }

  // When each held customer's hold began: the open hold interval of the conference's timeline.
  async function readHolds(doc) {
    const held = heldCustomers(doc);
    const key = held.join("\n");
    if (!held.length) {
      holdSince.delete(doc.id);
      return;
    }
    if (holdSince.get(doc.id)?.key === key) return;
    const line = await api(`/v1/conferences/${encodeURIComponent(doc.id)}/timeline`);
    const starts = [];
    for (const participant of line ? line.participants : []) {
      if (!held.includes(participant.label)) continue;
      for (const interval of participant.intervals) {
        if (interval.kind === "hold" && interval.to === null) starts.push(new Date(interval.from));
      }
    }
    holdSince.set(doc.id, { key, starts });
  }

  function count(now) {
    const day = dayStart(now);
    const counts = {
      live: 0, waiting: 0, on_hold: 0, in_transfer: 0, longest_hold: 0,
      transfers_completed: 0, transfers_failed: 0, supervisors: 0,
    };
    for (const doc of conferences.values()) {
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
    for (const [id, holds] of holdSince) {
      if (!conferences.has(id)) continue;
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

  function failed(error) {
    if (error instanceof SignedOut) {
      signOut("The token was refused or has expired: sign in again.");
    } else {
      setStatus("error", "confctl did not answer; retrying…");
    }
  }

  const retryPause = (attempt) => RETRY_MS[Math.min(attempt, RETRY_MS.length) - 1];

  // A read of `id` failed: read it again after a pause (longer after each failure in a row).
  function retryLater(id, error) {
    failed(error);
    if (!token || error instanceof SignedOut) return;
    const previous = stale.get(id);
    clearTimeout(previous?.timer);
    const attempt = (previous?.attempt ?? 0) + 1;
    const mine = session;
    const timer = setTimeout(() => {
      if (mine === session) refresh(id);
    }, retryPause(attempt));
    stale.set(id, { attempt, timer });
  }

  // Live again once the stream is open, the lists are in and no read waits to be retried.
  function healthy() {
    const state = $("#status").dataset.state;
    if (state !== "error" && state !== "loading") return;
    if (token && source?.readyState === EventSource.OPEN && !stale.size && loadTimer === null) {
      setStatus("live", "Live");
    }
  }

  function forgetRetries() {
    session += 1;
    clearTimeout(loadTimer);
    loadTimer = null;
    for (const entry of stale.values()) clearTimeout(entry.timer);
    stale.clear();
  }

  // Re-read one conference; events that arrive meanwhile cause one more read after it, not one each.
  function refresh(id) {
    if (!token) return;
    if (reading.has(id)) {
      again.add(id);
      return;
    }
    const read = (async () => {
      try {
        do {
          again.delete(id);
          const doc = await api(`/v1/conferences/${encodeURIComponent(id)}`);
          if (doc) {
            await readHolds(doc);
            conferences.set(id, doc);
          }
        } while (again.has(id));
        clearTimeout(stale.get(id)?.timer);
        stale.delete(id);
        render();
        healthy();
      } catch (error) {
        retryLater(id, error);
      } finally {
        reading.delete(id);
      }
    })();
    reading.set(id, read);
  }

  function follow(after) {
    const query = new URLSearchParams({ access_token: token });
    if (after !== null && after !== "") query.set("after", String(after));
    source = new EventSource(ROOT + "/v1/stream?" + query);
    const onEvent = (message) => {
      lastId = message.lastEventId || lastId;
      try {
        refresh(JSON.parse(message.data).conference_id);
      } catch (error) {
        setStatus("error", "An event could not be read.");
      }
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onopen = () => {
      // The events missed while the stream was down come with it again; the reads that failed meanwhile are
      // read again now, and so are the lists.
      if (loadTimer !== null) {
        clearTimeout(loadTimer);
        load();
      }
      for (const [id, entry] of stale) {
        clearTimeout(entry.timer);
        entry.attempt = 0;
        refresh(id);
      }
      if (stale.size) setStatus("loading", "Catching up…");
      else setStatus("live", "Live");
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // EventSource gives up only on an answer other than 200 (an expired token): ask for a new one.
        signOut("The live stream was refused: sign in again.");
      } else {
        setStatus("error", "Reconnecting…");
      }
    };
  }

  function start() {
    setStatus("loading", "Loading…");
    // The stream first (from the served position), so nothing stored while the lists load is missed.
    follow(lastId ?? document.body.dataset.after);
    load();
  }

  // The lists: live conferences and those completed today. Read again after a pause if they fail.
  async function load(attempt = 0) {
    const mine = session;
    loadTimer = null;
    try {
      const since = dayStart(new Date());
      const docs = [
        ...(await listAll("init")), ...(await listAll("in-progress")), ...(await listAll("completed", since)),
      ];
      if (mine !== session) return;
      for (const doc of docs) {
        if (!conferences.has(doc.id)) conferences.set(doc.id, doc); // else a re-read after an event has it
        await readHolds(conferences.get(doc.id));
      }
      if (mine !== session) return;
      window.wallboard.ready = true;
      render();
      healthy();
    } catch (error) {
      if (mine !== session) return;
      failed(error);
      if (token && !(error instanceof SignedOut)) {
        loadTimer = setTimeout(() => {
          if (mine === session) load(attempt + 1);
        }, retryPause(attempt + 1));
      }
    }
  }

  function signOut(text) {
    if (source) source.close();
    source = null;
    token = null;
    forgetRetries();
    sessionStorage.removeItem(STORAGE_KEY);
    setStatus("signed-out", text);
    $("#signin").hidden = false;
    $("#token").focus();
  }

  function signIn(value) {
    token = value;
    sessionStorage.setItem(STORAGE_KEY, value);
    $("#signin").hidden = true;
    conferences.clear();
    holdSince.clear();
    forgetRetries();
    window.wallboard.ready = false;
    start();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const given = fragment.get("token");
    if (given) history.replaceState(null, "", location.pathname + location.search); // off the address bar
    $("#signin").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("#token").value.trim();
      $("#token").value = "";
      if (value) signIn(value);
    });
    const kept = given || sessionStorage.getItem(STORAGE_KEY);
    if (kept) signIn(kept);
    else signOut("Sign in with a browser token (POST /v1/tokens).");
    setInterval(render, 1000); // the longest hold ticks; "today" rolls over at midnight UTC
  });
})();
