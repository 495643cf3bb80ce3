// The supervisor console: conferences live from confctl's public API and stream, one conference in detail
// (participants, who hears whom, transfer, timeline, events) and the controls a supervisor needs.
//
// Signing in (a browser token from `#token=...` or the sign-in form, kept in sessionStorage), the stream and the
// re-reads are session.js's (shared with the wallboard): the list is /v1/conferences (live ones and those ended
// today), then every event on /v1/stream re-reads its conference (coalesced), a failed read is read again. Here,
// the selected conference's audibility, timeline and new events are re-read with it.
//
// What is shown changes only from those re-reads: an action's answer never changes a row or the drawing. An
// action stays "pending" until a re-read shows its effect (or shows it failed).
import { Api, ApiError, NetworkError, seg } from "./api.js";
import { drawHears } from "./drawing.js";
import { createSession, joined, refused as refusedToken, setStatus } from "./session.js";
import { drawSwimlane, participantsAt } from "./swimlane.js";

const TOKEN_KEY = "confctl.console.token";
const THEME_KEY = "confctl.console.theme";
const FOLDED_KEY = "confctl.console.folded"; // the forms folded away, by their form id
const THEMES = ["auto", "dark", "light"];
const ROUTE = /^#\/conferences\/(.+)$/;
const STATUS_TEXT = { init: "Starting", "in-progress": "Live", completed: "Ended" };

// What tests (and a curious operator) can read.
window.confctlConsole = { ready: false, selected: null, version: null, moment: null };
const exposed = window.confctlConsole;

const session = createSession({
  name: "console", storageKey: TOKEN_KEY, get: (path) => api.get(path), reread,
  loaded: () => {
    exposed.ready = true;
    select(routed()); // the conference in the address, read now that there is a token
  },
  signedIn: () => showSignedIn(true),
  signedOut: () => showSignedIn(false),
});
const api = new Api(() => session.token);
const conferences = session.conferences; // id -> conference document
const holdSince = session.holdSince; // id -> {key: the held customers' labels, starts: [Date]}

// The selected conference, as last read: {id, doc, audibility, timeline, events, after}.
let current = null;
let moment = null; // the scrubbed version, null when live
let scrubSeq = 0;
const choices = new Map(); // supervisor label -> {mode, coach} picked but not switched yet

// Actions sent and not yet seen to take effect: key -> {id, conferenceId, label, action, accepted, answer, expect}.
const pending = new Map();
let actionSeq = 0;
let feedbackFor = null; // the action id the feedback line is about

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// Builds an element: h("td", {dataset: {col: "x"}, className: "y"}, "text", child...). Text is never HTML.
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// ---- formatting --------------------------------------------------------------------------------------------

function clock(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function duration(since) {
  const seconds = Math.max(0, Math.floor((Date.now() - since.getTime()) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

const activeTransfer = (doc) => doc.transfers.find((t) => t.state === "dialing" || t.state === "consulting") ?? null;
const find = (doc, label) => doc.participants.find((p) => p.label === label) ?? null;
// The live leg of a label, else its latest (a label can be reused once its leg has left).
const leg = (doc, label) => {
  const legs = doc.participants.filter((p) => p.label === label);
  return legs.find((p) => ["dialing", "ringing", "joined"].includes(p.status)) ?? legs.at(-1) ?? null;
};

// ---- theme ---------------------------------------------------------------------------------------------------

// The choice kept in localStorage (theme.js, a classic script in <head>, has applied it before the first paint).
function savedTheme() {
  const choice = localStorage.getItem(THEME_KEY);
  return THEMES.includes(choice) ? choice : "auto";
}

function applyTheme(choice) {
  if (choice === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = choice;
  const button = $("#theme");
  const next = THEMES[(THEMES.indexOf(choice) + 1) % THEMES.length];
  const names = { auto: "follows the system", dark: "dark", light: "light" };
  button.dataset.themeChoice = choice;
  // The name is the visible text ("Theme: dark"); what a click does is the description.
  button.title = `${names[choice][0].toUpperCase()}${names[choice].slice(1)}; switch to ${names[next]}`;
  $(".theme-name", button).textContent = choice;
}

function cycleTheme() {
  const now = savedTheme();
  const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length];
  if (next === "auto") localStorage.removeItem(THEME_KEY);
  else localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
}

// ---- reading -------------------------------------------------------------------------------------------------

async function readEvents(id, after) {
  const items = [];
  let next = after;
  for (;;) {
    const query = new URLSearchParams({ limit: "500" });
    if (next) query.set("after", String(next));
    const page = await api.get(`/v1/conferences/${seg(id)}/events?${query}`);
    items.push(...page.items);
    if (page.next_after === null || page.next_after === undefined || !page.items.length) return items;
    next = page.next_after;
  }
}

// Reads one conference again (and, when it is the selected one, its audibility, timeline and new events), for
// session.js's coalesced re-read: a failure is thrown to it (it reads again later), a 404 is no failure.
async function reread(id) {
  try {
    const mine = current;
    if (id === mine?.id) {
      const after = mine.after;
      const [doc, audibility, line, events] = await Promise.all([
        api.get(`/v1/conferences/${seg(id)}`), api.get(`/v1/conferences/${seg(id)}/audibility`),
        api.get(`/v1/conferences/${seg(id)}/timeline`), readEvents(id, after),
      ]);
      await session.readHolds(doc, line);
      conferences.set(id, doc);
      if (current === mine && mine.after === after) {
        current.doc = doc;
        current.audibility = audibility;
        current.timeline = line;
        const fresh = events.filter((e) => e.version > current.after);
        current.events.push(...fresh);
        current.after = Math.max(current.after, ...fresh.map((e) => e.version));
        renderDetail(fresh);
      }
    } else {
      const doc = await api.get(`/v1/conferences/${seg(id)}`);
      await session.readHolds(doc);
      conferences.set(id, doc);
    }
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    if (id === current?.id) renderMissing(id); // not there: nothing to read again
    return;
  }
  renderList();
  settle(conferences.get(id));
}

function routed() {
  const match = ROUTE.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}


// ---- sign-in ---------------------------------------------------------------------------------------------------

// What needs a token shows only while signed in (session.js shows and hides the sign-in form).
function showSignedIn(yes) {
  exposed.ready = false;
  $("#console").hidden = !yes;
  $("#feedback").hidden = !yes;
  $("#signout").hidden = !yes;
}

// ---- the list ----------------------------------------------------------------------------------------------------

function order(a, b) {
  const ended = (doc) => (doc.status === "completed" ? 1 : 0);
  return ended(a) - ended(b) || String(b.created_at ?? "").localeCompare(String(a.created_at ?? ""));
}

function renderList() {
  const showEnded = $("#show-ended").checked;
  const docs = [...conferences.values()].filter((d) => showEnded || d.status !== "completed").sort(order);
  const body = $("#conferences tbody");
  const rows = new Map($$("tr[data-conference]", body).map((tr) => [tr.dataset.conference, tr]));
  let before = body.firstChild;
  for (const doc of docs) {
    let row = rows.get(doc.id);
    rows.delete(doc.id);
    if (!row) row = newListRow(doc.id);
    fillListRow(row, doc);
    if (row !== before) body.insertBefore(row, before);
    before = row.nextSibling;
  }
  for (const row of rows.values()) row.remove();
  $("#list-empty").hidden = docs.length > 0;
  $("#list-empty").textContent = showEnded ? "No conferences today." : "No live conferences right now.";
}

function newListRow(id) {
  const cells = ["status", "customer", "agents", "hold", "transfer"].map((col) => h("td", { dataset: { col } }));
  const row = h("tr", { dataset: { conference: id } }, cells);
  row.addEventListener("click", (event) => {
    if (event.target.closest("a")) return; // the link does it
    location.hash = `#/conferences/${encodeURIComponent(id)}`;
  });
  return row;
}

function fillListRow(row, doc) {
  row.dataset.status = doc.status;
  const cell = (col) => $(`[data-col="${col}"]`, row);
  const status = cell("status");
  if (status.dataset.value !== doc.status) {
    status.dataset.value = doc.status;
    status.replaceChildren(h("span", { className: "badge", dataset: { status: doc.status } },
      STATUS_TEXT[doc.status] ?? doc.status));
  }
  const customer = doc.customer ? doc.customer.from : doc.id;
  const selected = doc.id === exposed.selected;
  let link = $("a", cell("customer"));
  if (!link) {
    link = h("a", { href: `#/conferences/${encodeURIComponent(doc.id)}`, title: doc.id });
    cell("customer").append(link);
  }
  if (link.textContent !== customer) link.textContent = customer;
  if (selected) link.setAttribute("aria-current", "true");
  else link.removeAttribute("aria-current");
  row.classList.toggle("selected", selected);
  const agents = joined(doc, "agent").map((p) => p.label).join(", ");
  if (cell("agents").textContent !== agents) cell("agents").textContent = agents;
  const hold = cell("hold");
  const starts = doc.status === "completed" ? [] : (holdSince.get(doc.id)?.starts ?? []);
  if (starts.length) {
    const oldest = new Date(Math.min(...starts.map((s) => s.getTime())));
    hold.dataset.holdSince = oldest.toISOString();
    hold.textContent = duration(oldest);
  } else {
    delete hold.dataset.holdSince;
    hold.textContent = "";
  }
  const transfer = activeTransfer(doc);
  const text = transfer ? `${transfer.kind} ${transfer.state} → ${transfer.target_label}` : "";
  if (cell("transfer").textContent !== text) cell("transfer").textContent = text;
}

// Every second: hold times tick.
function tick() {
  for (const node of $$("[data-hold-since]")) {
    const text = (node.dataset.holdPrefix ?? "") + duration(new Date(node.dataset.holdSince));
    if (node.textContent !== text) node.textContent = text;
  }
}

// ---- routing -------------------------------------------------------------------------------------------------------

function route() {
  const id = routed();
  if (id === exposed.selected && (id === null || current)) return;
  select(id);
}

function select(id) {
  exposed.selected = id;
  exposed.version = null;
  exposed.moment = null;
  moment = null;
  scrubSeq += 1;
  choices.clear();
  const detail = $("#detail");
  delete detail.dataset.conference;
  $("#participants tbody").replaceChildren();
  $("#events").replaceChildren();
  $("#swimlane").replaceChildren();
  $("#hears").replaceChildren();
  $("#hears-list").replaceChildren();
  showMoment(null);
  if (id === null) {
    current = null;
    $("#detail-title").textContent = "No conference selected";
    $("#detail-empty").hidden = false;
    $("#detail-body").hidden = true;
    $("#conference-actions").hidden = true;
  } else {
    current = { id, doc: null, audibility: null, timeline: null, events: [], after: 0 };
    $("#detail-title").textContent = `Loading ${id}…`;
    $("#detail-empty").hidden = true;
    $("#detail-body").hidden = true;
    if (session.token) session.refresh(id);
  }
  renderList();
}

function renderMissing(id) {
  $("#detail-title").textContent = `No conference ${id}`;
  $("#detail-empty").hidden = false;
  $("#detail-empty").textContent = "confctl has no conference with this id. Choose one in the list.";
  $("#detail-body").hidden = true;
  $("#conference-actions").hidden = true;
}

// ---- the detail ----------------------------------------------------------------------------------------------------

function renderDetail(fresh) {
  const { doc, audibility, timeline, events } = current;
  const live = doc.status !== "completed";
  const detail = $("#detail");
  $("#detail-empty").hidden = true;
  $("#detail-body").hidden = false;

  const title = $("#detail-title");
  title.replaceChildren(h("span", { className: "conf-id" }, doc.id), " ",
    h("span", { className: "badge", dataset: { status: doc.status } }, STATUS_TEXT[doc.status] ?? doc.status));
  $("#detail-customer").textContent = doc.customer ? `${doc.customer.from} → ${doc.customer.to}` : "–";
  $("#detail-started").textContent = doc.started_at ? clock(doc.started_at)
    : (doc.created_at ? `created ${clock(doc.created_at)}` : "–");
  if (doc.ended_at) $("#detail-started").textContent += ` · ended ${clock(doc.ended_at)}`;
  const recording = doc.recording;
  $("#detail-recording").textContent = recording && recording.status !== "absent" ? recording.status : "not recorded";
  $("#detail-recording").dataset.recording = recording ? recording.status : "absent";
  $("#detail-version").textContent = String(doc.version);

  const rec = recording?.status;
  const actions = $("#conference-actions");
  actions.hidden = !live;
  $('[data-action="pause-recording"]', actions).hidden = rec !== "in-progress";
  $('[data-action="resume-recording"]', actions).hidden = rec !== "paused";
  $('[data-action="stop-recording"]', actions).hidden = rec !== "in-progress" && rec !== "paused";
  markBusy(actions, doc.id, "");

  renderParticipants(doc);
  if (moment === null) drawLive();
  renderTransfer(doc);
  renderForms(doc, live);
  renderSwimlane(timeline, events);
  appendEvents(fresh);

  detail.dataset.conference = doc.id;
  exposed.version = doc.version;
}

function drawLive() {
  $("#hears-when").textContent = "now";
  drawHears($("#hears"), $("#hears-list"), current.doc.participants, current.audibility);
}

const ACTION_TEXT = {
  hold: "Hold", unhold: "Take off hold", mute: "Mute", unmute: "Unmute", remove: "Remove", switch: "Switch",
};

function participantActions(doc, p) {
  const agents = joined(doc, "agent").map((a) => a.label);
  const connected = p.status === "joined";
  const buttons = [];
  if (doc.status === "completed") return { signature: "ended", nodes: [] };
  if (connected && p.role !== "supervisor") buttons.push(p.hold ? "unhold" : "hold");
  if (connected && p.role !== "supervisor") buttons.push(p.muted ? "unmute" : "mute");
  const nodes = [];
  let signature = buttons.join(",");
  if (connected && p.role === "supervisor") {
    const picked = choices.get(p.label) ?? { mode: p.mode === "normal" ? "monitor" : p.mode, coach: p.coach };
    signature += `|sup:${picked.mode}:${picked.coach}:${agents.join(",")}`;
    const mode = h("select", { dataset: { field: "mode" }, "aria-label": `Mode of ${p.label}` },
      ["monitor", "coach", "barge"].map((m) => h("option", { value: m, selected: m === picked.mode }, m)));
    const coach = h("select", { dataset: { field: "coach" }, "aria-label": `Agent ${p.label} coaches`,
      disabled: picked.mode !== "coach" },
    agents.length ? agents.map((a) => h("option", { value: a, selected: a === picked.coach }, a))
      : [h("option", { value: "" }, "no agent")]);
    const remember = () => {
      choices.set(p.label, { mode: mode.value, coach: coach.value || null });
      coach.disabled = mode.value !== "coach";
    };
    mode.addEventListener("change", remember);
    coach.addEventListener("change", remember);
    nodes.push(mode, coach);
    buttons.push("switch");
  }
  if (["dialing", "ringing", "joined"].includes(p.status)) buttons.push("remove");
  signature += "|" + buttons.join(",");
  for (const action of buttons) {
    nodes.push(h("button", {
      type: "button", dataset: { action }, className: action === "remove" ? "danger" : undefined,
      "aria-label": `${ACTION_TEXT[action]} ${p.label}`,
    }, ACTION_TEXT[action]));
  }
  return { signature, nodes };
}

// The toggles whose button replaces the other: focus moves to it.
const TWIN = { hold: "unhold", unhold: "hold", mute: "unmute", unmute: "mute" };

function renderParticipants(doc) {
  const body = $("#participants tbody");
  const rows = new Map($$("tr[data-participant]", body).map((tr) => [tr.dataset.participant, tr]));
  // One row per label: the live leg, else the latest one (a label is unique among live legs).
  const labels = [...new Set(doc.participants.map((p) => p.label))];
  const people = labels.map((label) => leg(doc, label));
  const rank = (p) => (["dialing", "ringing", "joined"].includes(p.status) ? 0 : 1);
  const roles = ["customer", "agent", "external", "supervisor"];
  people.sort((a, b) => rank(a) - rank(b) || roles.indexOf(a.role) - roles.indexOf(b.role));
  const holds = current.timeline ? holdStarts(current.timeline) : new Map();
  let before = body.firstChild;
  for (const p of people) {
    let row = rows.get(p.label);
    rows.delete(p.label);
    if (!row) {
      row = h("tr", { dataset: { participant: p.label } },
        ["label", "role", "status", "mode", "hold", "muted", "actions"].map((col) => h("td", { dataset: { col } })));
    }
    fillParticipant(row, doc, p, holds.get(p.label));
    if (row !== before) body.insertBefore(row, before);
    before = row.nextSibling;
  }
  for (const row of rows.values()) row.remove();
}

function holdStarts(line) {
  const starts = new Map();
  for (const participant of line.participants) {
    const open = participant.intervals.filter((i) => i.kind === "hold" && i.to === null);
    if (open.length) starts.set(participant.label, new Date(open.at(-1).from));
  }
  return starts;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function fillParticipant(row, doc, p, heldSince) {
  const cell = (col) => $(`[data-col="${col}"]`, row);
  row.dataset.role = p.role;
  row.dataset.status = p.status;
  row.classList.toggle("gone", !["dialing", "ringing", "joined"].includes(p.status));
  setText(cell("label"), p.label);
  setText(cell("role"), p.role);
  setText(cell("status"), p.status);
  if (p.leave_reason && p.status !== "joined") cell("status").title = `${p.status}: ${p.leave_reason}`;
  else cell("status").removeAttribute("title");
  const mode = cell("mode");
  mode.dataset.value = p.mode;
  setText(mode, p.mode === "normal" ? "" : p.mode);
  if (p.mode === "coach" && p.coach) {
    mode.dataset.coach = p.coach;
    mode.title = `coaching ${p.coach}`;
  } else {
    delete mode.dataset.coach;
    mode.removeAttribute("title");
  }
  const hold = cell("hold");
  hold.dataset.value = String(p.hold);
  if (p.hold && p.status === "joined" && heldSince) {
    hold.dataset.holdSince = heldSince.toISOString();
    hold.dataset.holdPrefix = "On\u00a0hold "; // a narrow cell breaks before the time, not inside "On hold"
    setText(hold, hold.dataset.holdPrefix + duration(heldSince));
  } else {
    delete hold.dataset.holdSince;
    setText(hold, p.hold ? "On\u00a0hold" : "");
  }
  cell("muted").dataset.value = String(p.muted);
  setText(cell("muted"), p.muted ? "Muted" : "");

  const actions = cell("actions");
  const { signature, nodes } = participantActions(doc, p);
  if (actions.dataset.signature !== signature) {
    const focused = actions.contains(document.activeElement) ? document.activeElement : null;
    const wanted = focused && (focused.dataset.action || focused.dataset.field);
    actions.dataset.signature = signature;
    actions.replaceChildren(h("div", { className: "buttons" }, nodes));
    if (wanted) {
      const next = $(`[data-action="${wanted}"], [data-field="${wanted}"], [data-action="${TWIN[wanted]}"]`, actions);
      (next ?? $("button, select", actions))?.focus();
    }
  }
  markBusy(actions, doc.id, p.label);
}

// Buttons of actions still pending: busy and disabled (and enabled again once they settle).
function markBusy(root, conferenceId, label) {
  for (const button of $$("button[data-action]", root)) {
    const busy = pending.has(pendingKey(conferenceId, label, button.dataset.action));
    if (busy) {
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
    } else if (button.getAttribute("aria-busy") === "true") {
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }
}

function renderTransfer(doc) {
  const box = $("#transfer");
  const transfer = activeTransfer(doc) ?? doc.transfers.at(-1) ?? null;
  if (!transfer) {
    if (!$("p.muted", box) || $("[data-transfer]", box)) box.replaceChildren(h("p", { className: "muted" }, "No transfer."));
    return;
  }
  const active = transfer.state === "dialing" || transfer.state === "consulting";
  const signature = [transfer.id, transfer.state, transfer.pending, doc.status].join("|");
  let card = $("[data-transfer]", box);
  if (!card || card.dataset.signature !== signature) {
    const focused = box.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    const buttons = [];
    if (doc.status !== "completed" && transfer.kind === "warm" && transfer.state === "consulting") {
      buttons.push(h("button", { type: "button", dataset: { action: "complete-transfer" } }, "Complete transfer"));
    }
    if (doc.status !== "completed" && transfer.kind === "warm" && active) {
      buttons.push(h("button", { type: "button", className: "danger", dataset: { action: "cancel-transfer" } },
        "Cancel transfer"));
    }
    const states = {
      dialing: `ringing ${transfer.target_label}`, consulting: "consulting: the customer hears music",
      completed: "completed", cancelled: "cancelled", failed: "failed",
    };
    card = h("div", { className: `transfer ${active ? "active" : "ended"}`, dataset: {
      transfer: transfer.id, state: transfer.state, kind: transfer.kind, signature } },
    h("p", { className: "transfer-line" },
      h("span", { className: "badge", dataset: { state: transfer.state } }, transfer.state), " ",
      h("strong", {}, `${transfer.kind === "warm" ? "Warm" : "Cold"} transfer`),
      ` from ${transfer.from} to ${transfer.target_label} (${transfer.to})`),
    h("p", { className: "muted" }, `Started ${clock(transfer.created_at)}`,
      transfer.ended_at ? ` · ended ${clock(transfer.ended_at)}` : "",
      transfer.failure_reason ? ` · ${transfer.failure_reason}` : "",
      active ? ` · ${states[transfer.state]}` : "",
      transfer.pending ? " · Twilio steps being retried" : ""),
    buttons.length ? h("div", { className: "buttons" }, buttons) : null);
    box.replaceChildren(card);
    if (focused) ($(`[data-action="${focused}"]`, card) ?? $("#transfer-title"))?.focus?.();
  }
  markBusy(card, doc.id, "");
}

function renderForms(doc, live) {
  $("#actions").hidden = !live;
  const agents = joined(doc, "agent").map((p) => p.label);
  for (const select of $$("select[data-agents]")) {
    const signature = agents.join("\n");
    if (select.dataset.signature === signature) continue;
    const kept = select.value;
    select.dataset.signature = signature;
    select.replaceChildren(...(agents.length ? agents.map((a) => h("option", { value: a, selected: a === kept }, a))
      : [h("option", { value: "" }, "no agent joined")]));
  }
  const busy = (form) => [...pending.values()].some((e) => e.form === form.id && e.conferenceId === doc.id);
  for (const form of $$("#actions form")) {
    const submit = $("button[type=submit]", form);
    const isBusy = busy(form);
    submit.disabled = isBusy;
    if (isBusy) submit.setAttribute("aria-busy", "true");
    else submit.removeAttribute("aria-busy");
  }
}

function renderSwimlane(line, events) {
  const container = $("#swimlane");
  const hadFocus = document.activeElement?.id === "scrub";
  drawSwimlane(container, line, events, { onScrub, moment });
  if (hadFocus) $("#scrub")?.focus();
}

function appendEvents(fresh) {
  const list = $("#events");
  const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4; // then it follows the new ones
  const shown = new Set($$("li[data-version]", list).map((li) => li.dataset.version));
  for (const event of fresh) {
    if (shown.has(String(event.version))) continue;
    const label = event.data?.label ?? event.data?.participant ?? null;
    list.append(h("li", { dataset: { version: String(event.version), type: event.type } },
      h("time", { datetime: event.at }, clock(event.at)), " ",
      h("span", { className: "type" }, event.type),
      label ? h("span", { className: "subject" }, ` ${label}`) : null, " ",
      h("span", { className: "actor" }, event.actor ? `by ${event.actor}` : "")));
  }
  if (atEnd && fresh.length) list.scrollTop = list.scrollHeight;
}

// ---- scrubbing -----------------------------------------------------------------------------------------------------

function showMoment(version) {
  const text = $("#moment");
  const live = $("#live");
  if (version === null) {
    text.hidden = true;
    text.textContent = "";
    live.hidden = true;
    return;
  }
  const event = current?.events.find((e) => e.version === version);
  text.textContent = event ? `Showing ${clock(event.at)} (version ${version}, ${event.type})`
    : `Showing version ${version}`;
  text.hidden = false;
  live.hidden = false;
}

async function onScrub(version) {
  if (!current?.timeline) return;
  if (version === null || version === undefined) {
    backToLive();
    return;
  }
  const id = current.id;
  moment = version;
  const seq = ++scrubSeq;
  try {
    const audibility = await api.get(`/v1/conferences/${seg(id)}/audibility?at=${encodeURIComponent(version)}`);
    if (seq !== scrubSeq || current?.id !== id || moment !== version) return;
    const event = current.events.find((e) => e.version === version);
    $("#hears-when").textContent = event ? `at ${clock(event.at)}` : `at version ${version}`;
    drawHears($("#hears"), $("#hears-list"), participantsAt(current.timeline, version), audibility);
    showMoment(version);
    exposed.moment = version;
  } catch (error) {
    if (seq !== scrubSeq) return;
    if (refusedToken(error)) {
      session.fail(error);
      return;
    }
    // Not a read to retry by itself: the person scrubs again (or goes back to live).
    console.info("console: a moment could not be read", error);
    const text = $("#moment");
    text.textContent = `Version ${version} could not be read (confctl did not answer): scrub again.`;
    text.hidden = false;
    $("#live").hidden = false;
  }
}

function backToLive() {
  const hadFocus = document.activeElement?.id === "live";
  moment = null;
  scrubSeq += 1;
  exposed.moment = null;
  showMoment(null);
  if (current?.doc) {
    drawLive();
    renderSwimlane(current.timeline, current.events);
  }
  if (hadFocus) ($("#scrub") ?? $("#history-title"))?.focus();
}

// ---- actions ---------------------------------------------------------------------------------------------------------

const pendingKey = (conferenceId, label, action) => `${conferenceId}\n${label ?? ""}\n${action}`;

function feedback(state, parts, code = null) {
  const box = $("#feedback");
  box.dataset.state = state;
  if (code) box.dataset.code = code;
  else delete box.dataset.code;
  box.replaceChildren(...parts);
}

function confirmAction(message) {
  const dialog = $("#confirm");
  const opener = document.activeElement;
  $("#confirm-message").textContent = message;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      if (opener && document.contains(opener)) opener.focus();
    }, { once: true });
    dialog.showModal();
    $("#confirm-no").focus();
  });
}

// One user action: confirm (if destructive), send with its Idempotency-Key, then wait for the re-read that shows
// its effect. `expect(doc, answer)` says {state: "done"|"failed", text} once it shows, null before.
async function act({ label = "", action, form = null, method, path, body, confirm, pendingText, expect }) {
  const conferenceId = current.id;
  const key = pendingKey(conferenceId, label, action);
  if (pending.has(key)) return;
  if (confirm && !(await confirmAction(confirm))) return;
  // What the conference had when the request went: a new leg or transfer is one appended after these (the
  // document only ever appends them), which identifies it when the answer does not say (a proxy stripped it).
  const known = conferences.get(conferenceId);
  const before = { participants: known?.participants.length ?? 0, transfers: known?.transfers.length ?? 0 };
  const entry = { id: ++actionSeq, conferenceId, label, action, form, accepted: false, answer: null, before, expect };
  pending.set(key, entry);
  feedbackFor = entry.id;
  feedback("pending", [`${pendingText}, waiting for Twilio…`]);
  rerender();
  try {
    entry.answer = await api.act(method, path, body); // null: accepted, with no body to read
  } catch (error) {
    pending.delete(key);
    if (entry.id === feedbackFor) refused(error);
    if (error instanceof ApiError && error.status === 401) session.signOut("The token has expired: sign in again.");
    rerender();
    return;
  }
  entry.accepted = true;
  settle(conferences.get(conferenceId)); // it may already show, if its event came before the answer
  if (form) $(`#${form}`)?.reset();
  syncFormControls();
}

function refused(error) {
  if (error instanceof ApiError) {
    feedback("refused", [
      h("strong", { className: "title" }, `Refused: ${error.title}`), " ",
      h("span", { className: "detail" }, error.detail), " ",
      h("span", { className: "code" }, `(${error.status} ${error.code})`),
    ], error.code);
  } else if (error instanceof NetworkError) {
    feedback("refused", [h("strong", { className: "title" }, "No answer from confctl"), " ",
      h("span", { className: "detail" }, "The request may not have been carried out: check the conference.")],
    "network_error");
  } else {
    feedback("refused", [h("span", { className: "detail" }, String(error))], "error");
  }
}

// Pending actions of this conference whose effect (or failure) the re-read document shows.
function settle(doc) {
  if (!doc) return;
  let changed = false;
  for (const [key, entry] of pending) {
    if (entry.conferenceId !== doc.id || !entry.accepted) continue;
    let outcome;
    try {
      outcome = entry.expect(doc, entry.answer, entry.before);
    } catch (error) {
      // A bug of the page, not a refusal: it is logged, and the action no longer waits (nor blocks its button).
      console.error("console: an action's effect could not be checked", error);
      outcome = { state: "done", text: "Accepted; see the conference for its effect." };
    }
    if (!outcome && doc.status === "completed" && entry.action !== "end") {
      outcome = { state: "failed", text: "The conference has ended." };
    }
    if (!outcome) continue;
    pending.delete(key);
    changed = true;
    if (entry.id === feedbackFor) feedback(outcome.state, [outcome.text]);
  }
  if (changed) rerender();
}

function rerender() {
  if (current?.doc) {
    for (const row of $$("#participants tr[data-participant]")) markBusy(row, current.id, row.dataset.participant);
    markBusy($("#conference-actions"), current.id, "");
    markBusy($("#transfer"), current.id, "");
    renderForms(current.doc, current.doc.status !== "completed");
  }
}

const conf = () => `/v1/conferences/${seg(current.id)}`;
const part = (label) => `${conf()}/participants/${seg(label)}`;

function onParticipantAction(button) {
  const row = button.closest("tr[data-participant]");
  const label = row.dataset.participant;
  const action = button.dataset.action;
  const flag = (field, value, text, done) => act({
    label, action, method: "PATCH", path: part(label), body: { [field]: value },
    pendingText: `${text} requested for ${label}`,
    expect: (doc) => {
      const p = leg(doc, label);
      if (!p || p.status !== "joined") return { state: "failed", text: `${label} is no longer in the conference.` };
      return p[field] === value ? { state: "done", text: `${label} ${done}.` } : null;
    },
  });
  if (action === "hold") return flag("hold", true, "Hold", "is on hold");
  if (action === "unhold") return flag("hold", false, "Unhold", "is off hold");
  if (action === "mute") return flag("muted", true, "Mute", "is muted");
  if (action === "unmute") return flag("muted", false, "Unmute", "is unmuted");
  if (action === "remove") {
    return act({
      label, action, method: "DELETE", path: part(label), pendingText: `Removal of ${label} requested`,
      confirm: `Remove ${label} from the conference? Their call leg ends.`,
      expect: (doc) => (["left", "failed"].includes(leg(doc, label)?.status)
        ? { state: "done", text: `${label} has left.` } : null),
    });
  }
  if (action === "switch") {
    const mode = $('[data-field="mode"]', row).value;
    const coach = $('[data-field="coach"]', row).value || null;
    const body = mode === "coach" ? { mode, coach } : { mode };
    if (mode === "coach" && !coach) {
      feedback("refused", [h("span", { className: "detail" }, "Coaching needs a joined agent to coach.")], "no_agent");
      return undefined;
    }
    return act({
      label, action, method: "PATCH", path: part(label), body,
      pendingText: `${label} switching to ${mode}${coach && mode === "coach" ? ` of ${coach}` : ""}`,
      expect: (doc) => {
        const p = leg(doc, label);
        if (!p || p.status !== "joined") return { state: "failed", text: `${label} is no longer in the conference.` };
        const ok = p.mode === mode && (mode !== "coach" || p.coach === coach);
        if (ok) choices.delete(label);
        return ok ? { state: "done", text: `${label} is now in ${mode} mode.` } : null;
      },
    });
  }
  return undefined;
}

function onConferenceAction(button) {
  const action = button.dataset.action;
  const recording = (verb, wanted, text, confirm) => act({
    action, method: "POST", path: `${conf()}/recording`, body: { action: verb }, confirm,
    pendingText: `${text} requested`,
    expect: (doc) => (wanted.includes(doc.recording?.status) ? { state: "done", text: `Recording ${doc.recording.status}.` }
      : null),
  });
  if (action === "pause-recording") return recording("pause", ["paused"], "Pausing the recording");
  if (action === "resume-recording") return recording("resume", ["in-progress"], "Resuming the recording");
  if (action === "stop-recording") {
    return recording("stop", ["stopped", "completed", "processing"], "Stopping the recording",
      "Stop the recording? It cannot be resumed.");
  }
  if (action === "end") {
    return act({
      action, method: "POST", path: `${conf()}/end`, pendingText: "Ending the conference",
      confirm: `End ${current.id}? Every call leg in it ends.`,
      expect: (doc) => (doc.status === "completed" ? { state: "done", text: "The conference has ended." } : null),
    });
  }
  const transfer = $("[data-transfer]")?.dataset.transfer;
  const transferState = (states, text, failed = []) => (doc) => {
    const t = doc.transfers.find((x) => x.id === transfer);
    if (!t) return null;
    if (states.includes(t.state)) return { state: "done", text };
    if (failed.includes(t.state)) return { state: "failed", text: `The transfer is ${t.state}.` };
    return null;
  };
  if (action === "complete-transfer" && transfer) {
    return act({
      action, method: "POST", path: `/v1/transfers/${seg(transfer)}/complete`, pendingText: "Completing the transfer",
      expect: transferState(["completed"], "Transfer completed.", ["cancelled", "failed"]),
    });
  }
  if (action === "cancel-transfer" && transfer) {
    return act({
      action, method: "POST", path: `/v1/transfers/${seg(transfer)}/cancel`, pendingText: "Cancelling the transfer",
      confirm: "Cancel the transfer? The target's call ends and the customer goes back to the agent.",
      expect: transferState(["cancelled"], "Transfer cancelled.", ["completed", "failed"]),
    });
  }
  return undefined;
}

function fields(form) {
  const body = {};
  for (const [name, value] of new FormData(form)) {
    const text = String(value).trim();
    if (text) body[name] = text;
  }
  return body;
}

function syncFormControls() {
  const form = $("#add-participant");
  const supervisor = form.elements.role.value === "supervisor";
  form.elements.mode.disabled = !supervisor;
  form.elements.coach.disabled = !supervisor || form.elements.mode.value !== "coach";
}

function onAddParticipant(form) {
  const body = fields(form);
  if (body.role !== "supervisor") {
    delete body.mode;
    delete body.coach;
  } else if (body.mode !== "coach") {
    delete body.coach;
  }
  return act({
    action: "add", form: form.id, method: "POST", path: `${conf()}/participants`, body,
    pendingText: `Dialing ${body.to}${body.label ? ` as ${body.label}` : ""}`,
    expect: (doc, answer, before) => {
      // The answer names the new leg; without one, it is the leg appended since the request went.
      const p = answer?.label ? leg(doc, answer.label) : doc.participants.slice(before.participants)
        .filter((x) => (body.label ? x.label === body.label : x.role === body.role)).at(-1);
      if (!p) return null;
      if (p.status === "joined") return { state: "done", text: `${p.label} joined.` };
      if (["failed", "left"].includes(p.status)) {
        return { state: "failed", text: `${p.label} did not join (${p.leave_reason ?? p.status}).` };
      }
      return null;
    },
  });
}

function onTransfer(form, kind) {
  const body = { kind, ...fields(form) };
  if (!body.from) {
    feedback("refused", [h("span", { className: "detail" }, "A transfer needs a joined agent to hand over from.")],
      "no_agent");
    return undefined;
  }
  const outcome = (doc, answer, before) => {
    // The answer names the transfer; without one, it is the one appended since the request went.
    const t = answer?.id ? doc.transfers.find((x) => x.id === answer.id)
      : doc.transfers.slice(before.transfers).find((x) => x.kind === kind && x.from === body.from);
    if (!t) return null;
    if (kind === "warm" && t.state === "consulting") {
      return { state: "done", text: `${t.target_label} joined: consulting (the customer hears music). Complete or cancel.` };
    }
    // A cold transfer whose target failed completes to its fallback (the transfer's `to` is then the fallback's):
    // say so, rather than a bare "completed" that hides that the target never took the call.
    if (t.state === "completed" && body.fallback_to && t.to !== body.to) {
      return { state: "done", text: `${body.to} did not take the call: the fallback ${t.to} did, as`
        + ` ${t.target_label}. Transfer completed.` };
    }
    if (t.state === "completed") return { state: "done", text: `Transfer to ${t.target_label} completed.` };
    if (t.state === "failed" || t.state === "cancelled") {
      return { state: "failed", text: `Transfer ${t.state}${t.failure_reason ? `: ${t.failure_reason}` : ""}.` };
    }
    return null;
  };
  return act({
    action: `${kind}-transfer`, form: form.id, method: "POST", path: `${conf()}/transfers`, body,
    pendingText: `${kind === "warm" ? "Warm" : "Cold"} transfer from ${body.from} to ${body.to} requested`,
    confirm: kind === "cold"
      ? `Cold transfer the customer from ${body.from} to ${body.to}? ${body.from} leaves at once; the customer waits`
        + ` on hold until the target answers${body.fallback_to ? ` (or ${body.fallback_to} if it does not)` : ""}.`
      : null,
    expect: outcome,
  });
}

// ---- start -----------------------------------------------------------------------------------------------------------

function wire() {
  $("#signout").addEventListener("click", () => session.signOut("Signed out."));
  $("#theme").addEventListener("click", cycleTheme);
  $("#show-ended").addEventListener("change", renderList);
  $("#live").addEventListener("click", () => backToLive());
  $(".skip").addEventListener("click", (event) => {
    event.preventDefault(); // the hash is the route: focus the detail instead
    $("#detail").focus();
  });
  window.addEventListener("hashchange", () => {
    if (ROUTE.test(location.hash) || location.hash === "" || location.hash === "#" || location.hash === "#/") route();
  });
  $("#participants").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button && !button.disabled && current?.doc) onParticipantAction(button);
  });
  for (const box of [$("#conference-actions"), $("#transfer")]) {
    box.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button && !button.disabled && current?.doc) onConferenceAction(button);
    });
  }
  rememberFolds();
  const add = $("#add-participant");
  add.addEventListener("change", syncFormControls);
  add.addEventListener("submit", (event) => {
    event.preventDefault();
    if (current?.doc) onAddParticipant(add);
  });
  for (const [id, kind] of [["warm-transfer", "warm"], ["cold-transfer", "cold"]]) {
    const form = $(`#${id}`);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (current?.doc) onTransfer(form, kind);
    });
  }
}

// The forms a supervisor folded stay folded on this browser (they are all open at first).
function rememberFolds() {
  let folded = [];
  try {
    folded = JSON.parse(localStorage.getItem(FOLDED_KEY) ?? "[]");
  } catch {
    folded = [];
  }
  const boxes = $$("details[data-form]");
  for (const box of boxes) {
    if (Array.isArray(folded) && folded.includes(box.dataset.form)) box.open = false;
    box.addEventListener("toggle", () => {
      const now = boxes.filter((b) => !b.open).map((b) => b.dataset.form);
      if (now.length) localStorage.setItem(FOLDED_KEY, JSON.stringify(now));
      else localStorage.removeItem(FOLDED_KEY);
    });
  }
}

function boot() {
  applyTheme(savedTheme());
  wire();
  syncFormControls();
  session.begin(); // the token from the fragment (off the address bar at once), or the kept one, or the form
  setInterval(tick, 1000);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
