// What confctl's browser pages (the wallboard, the supervisor console) share: signing in with a browser token,
// following the live stream, and keeping their conferences up to date from it. Each page serves this file beside
// its own scripts (/wallboard/session.js, /console/session.js: entry/pages.py), so it is imported as
// "./session.js" whatever prefix a proxy serves confctl under.
//
// Signs in with a browser token (POST /v1/tokens): from the URL fragment `#token=...` (removed from the address
// bar at once) or the sign-in form `#signin` (`#token`); kept only in this tab's sessionStorage. The initial state
// is /v1/conferences (live ones, and those completed today); then every event on /v1/stream re-reads its
// conference (coalesced: events that arrive during a re-read cause one more, not one each). The stream starts
// after the position the page was served at (<body data-after>) and EventSource resumes a dropped stream with
// Last-Event-ID by itself; `lastId` is where a new EventSource (after signing in again) resumes from. A read that
// fails (no answer, a 5xx) is read again after a pause that grows with each failure, and at once when the stream
// opens again: the event that asked for it is behind the stream's position by then, so nothing else would. The
// status (`#status[data-state]`) is live again once the stream is open and nothing waits to be read again.

// The stream's event names (its events' types), as the page was served with them (from confctl's one registry).
export const EVENT_TYPES = (document.body?.dataset.eventTypes ?? "").split(" ").filter(Boolean);
const PAGE = 200;
const RETRY_MS = [500, 1000, 2000, 4000, 8000]; // the pause before the 1st, 2nd, … retry of a read (then 8 s)

// Behind a proxy that serves confctl under a prefix (`serve --root-path`), every API path starts with it: the
// page is served with it in <body data-root> ("" at the top).
export const ROOT = document.body?.dataset.root ?? "";

// The token was refused (a 401 or 403): a page's own GET throws this, or an error with that `status`.
export class SignedOut extends Error {}

export const refused = (error) => error instanceof SignedOut || error?.status === 401 || error?.status === 403;

const $ = (selector) => document.querySelector(selector);

export function setStatus(state, text) {
  const status = $("#status");
  status.dataset.state = state;
  status.textContent = text;
}

// 00:00 UTC of `now`'s day: "today", for the lists and the wallboard's counts alike.
export function dayStart(now) {
  const day = new Date(now);
  day.setUTCHours(0, 0, 0, 0);
  return day;
}

export const joined = (doc, role) => doc.participants.filter((p) => p.role === role && p.status === "joined");

export function heldCustomers(doc) {
  if (doc.status === "completed") return [];
  return joined(doc, "customer").filter((p) => p.hold).map((p) => p.label);
}

function openHolds(line, labels) {
  const starts = [];
  for (const participant of line ? line.participants : []) {
    if (!labels.includes(participant.label)) continue;
    for (const interval of participant.intervals) {
      if (interval.kind === "hold" && interval.to === null) starts.push(new Date(interval.from));
    }
  }
  return starts;
}

const retryPause = (attempt) => RETRY_MS[Math.min(attempt, RETRY_MS.length) - 1];

// A page's session. The page gives:
// - name: for the log ("wallboard", "console"); storageKey: the sessionStorage key of the token;
// - get(path): a GET of one JSON document with the session's token (refused: see `refused`);
// - reread(id): reads one conference again into `conferences` (and whatever the page shows of it), and shows it;
// - loaded(): the lists are in; signedIn(), signedOut(): the page shows or hides what needs a token.
// It keeps `conferences` (id -> document) and `holdSince` (id -> {key: the held customers' labels, starts:
// [Date]}: when each held customer's hold began) for the page to show.
export function createSession({ name, storageKey, get, reread, loaded, signedIn = () => {}, signedOut = () => {} }) {
  const conferences = new Map();
  const holdSince = new Map();
  const reading = new Map(); // id -> a re-read in flight
  const again = new Set(); // ids with an event since their re-read started
  // Conferences whose last read failed, to be read again: id -> {attempt, timer}.
  const stale = new Map();
  let loadTimer = null; // the next try of the lists, after they failed
  let generation = 0; // counts sign-ins and sign-outs: a retry timer of an earlier session does nothing
  let token = null;
  let source = null;
  let lastId = null;

  function fail(error) {
    if (refused(error)) {
      signOut("The token was refused or has expired: sign in again.");
    } else {
      setStatus("error", "confctl did not answer; retrying…");
      console.info(`${name}: a read failed`, error); // info, not error: a dropped connection is expected
    }
  }

  // A read of `id` failed: read it again after a pause (longer after each failure in a row).
  function retryLater(id, error) {
    fail(error);
    if (!token || refused(error)) return;
    const previous = stale.get(id);
    clearTimeout(previous?.timer);
    const attempt = (previous?.attempt ?? 0) + 1;
    const mine = generation;
    const timer = setTimeout(() => {
      if (mine === generation) refresh(id);
    }, retryPause(attempt));
    stale.set(id, { attempt, timer });
  }

  // A read of `id` succeeded (or found it gone): nothing to read again.
  function recovered(id) {
    const entry = stale.get(id);
    if (entry) {
      clearTimeout(entry.timer);
      stale.delete(id);
    }
    healthy();
  }

  // The status says live again once the stream is open, the lists are in and no read waits to be retried.
  function healthy() {
    const state = $("#status").dataset.state;
    if (state !== "error" && state !== "loading") return;
    if (token && source?.readyState === EventSource.OPEN && !stale.size && loadTimer === null) setStatus("live", "Live");
  }

  function forgetRetries() {
    generation += 1;
    clearTimeout(loadTimer);
    loadTimer = null;
    for (const entry of stale.values()) clearTimeout(entry.timer);
    stale.clear();
  }

  async function listAll(status, since) {
    const found = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ status, limit: String(PAGE) });
      if (cursor) query.set("cursor", cursor);
      const page = await get("/v1/conferences?" + query);
      for (const item of page.items) {
        if (since && item.created_at && new Date(item.created_at) < since) return found;
        found.push(item);
      }
      cursor = page.next_cursor;
    } while (cursor);
    return found;
  }

  // When each held customer's hold began: the open hold interval of the conference's timeline (`line`, when the
  // page has just read it; else read, unless the same customers were held at the last read).
  async function readHolds(doc, line) {
    const held = heldCustomers(doc);
    const key = held.join("\n");
    if (!held.length) {
      holdSince.delete(doc.id);
      return;
    }
    if (!line && holdSince.get(doc.id)?.key === key) return;
    line ??= await get(`/v1/conferences/${encodeURIComponent(doc.id)}/timeline`);
    holdSince.set(doc.id, { key, starts: openHolds(line, held) });
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
          await reread(id);
        } while (again.has(id));
        recovered(id);
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
    if (after !== null && after !== undefined && after !== "") query.set("after", String(after));
    source = new EventSource(ROOT + "/v1/stream?" + query);
    const onEvent = (message) => {
      lastId = message.lastEventId || lastId;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        setStatus("error", "An event could not be read.");
        return;
      }
      refresh(event.conference_id);
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.onopen = () => {
      // The stream resumes after the last event it delivered, so the events missed while it was down re-read their
      // conferences by themselves; the reads that failed meanwhile are read again now, and so are the lists.
      if (loadTimer !== null) {
        clearTimeout(loadTimer);
        load();
      }
      for (const [id, entry] of stale) {
        clearTimeout(entry.timer);
        entry.attempt = 0;
        refresh(id);
      }
      if (stale.size || loadTimer !== null) setStatus("loading", "Catching up…");
      else setStatus("live", "Live");
    };
    source.onerror = () => {
      if (!source) return;
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
    const mine = generation;
    loadTimer = null;
    try {
      const since = dayStart(new Date());
      const docs = [
        ...(await listAll("init")), ...(await listAll("in-progress")), ...(await listAll("completed", since)),
      ];
      if (mine !== generation) return;
      for (const doc of docs) {
        if (!conferences.has(doc.id)) conferences.set(doc.id, doc); // else a re-read after an event has it
        await readHolds(conferences.get(doc.id));
      }
      if (mine !== generation) return;
      loaded();
      healthy();
    } catch (error) {
      if (mine !== generation) return;
      fail(error);
      if (token && !refused(error)) {
        loadTimer = setTimeout(() => {
          if (mine === generation) load(attempt + 1);
        }, retryPause(attempt + 1));
      }
    }
  }

  function signOut(text) {
    if (source) source.close();
    source = null;
    token = null;
    forgetRetries();
    sessionStorage.removeItem(storageKey);
    signedOut();
    setStatus("signed-out", text);
    $("#signin").hidden = false;
    $("#token").focus();
  }

  function signIn(value) {
    token = value;
    sessionStorage.setItem(storageKey, value);
    $("#signin").hidden = true;
    conferences.clear();
    holdSince.clear();
    forgetRetries();
    signedIn();
    start();
  }

  // Once the page is parsed (and its own controls wired): signs in with the fragment's or the kept token.
  function begin() {
    const given = new URLSearchParams(location.hash.slice(1)).get("token");
    if (given) history.replaceState(null, "", location.pathname + location.search); // off the address bar at once
    $("#signin").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("#token").value.trim();
      $("#token").value = "";
      if (value) signIn(value);
    });
    const kept = given || sessionStorage.getItem(storageKey);
    if (kept) signIn(kept);
    else signOut("Sign in with a browser token (POST /v1/tokens).");
  }

  return {
    get token() {
      return token;
    },
    conferences, holdSince, begin, signIn, signOut, fail, refresh, readHolds,
  };
}
