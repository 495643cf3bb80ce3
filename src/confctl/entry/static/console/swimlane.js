// The swim-lane chart of a conference's timeline (GET /v1/conferences/{id}/timeline): a lane per participant,
// a bar per interval (ringing, joined, on hold, muted, coaching, monitoring, barging), a time axis with a tick
// per event, and a scrub control over the conference's versions. Scrubbing (the slider, or a click or drag in
// the chart: the latest version at or before that time) calls onScrub(version), or onScrub(null) at the latest
// version (= live); the page then shows that moment's audibility. Plain ES module, no library.
//
// Long calls stay readable: an interval is drawn at least MIN_BAR pixels wide (a one-second hold in a ten-minute
// call is still a bar one can see and hit; a click on such a bar scrubs to the interval's first version, which a
// click mapped to a time could miss), and a button zooms the chart to the last five minutes and back.
//
// Colours are CSS custom properties with fallbacks readable on dark and light backgrounds:
//   --lane-ringing, --lane-joined, --lane-hold, --lane-muted, --lane-coaching, --lane-monitor, --lane-barge,
//   --lane-marker, --lane-fg, --lane-grid, --lane-bg.

const SVG = "http://www.w3.org/2000/svg";
const LABEL_W = 150;
const LANE_H = 42;
const TOP = 8;
const AXIS_H = 34;
const RIGHT = 16;
const MIN_BAR = 6; // px: the least width an interval is drawn at
const ZOOM_MS = 5 * 60 * 1000; // "last 5 minutes"

export const KINDS = {
  ringing: { label: "ringing", colour: "var(--lane-ringing, #d4a017)" },
  joined: { label: "in the conference", colour: "var(--lane-joined, #2e9e6a)" },
  hold: { label: "on hold (music)", colour: "var(--lane-hold, #8e5bd6)" },
  muted: { label: "muted", colour: "var(--lane-muted, #d64545)" },
  coaching: { label: "coaching", colour: "var(--lane-coaching, #e07b1f)" },
  monitor: { label: "monitoring", colour: "var(--lane-monitor, #3a7bd5)" },
  barge: { label: "barging in", colour: "var(--lane-barge, #c2185b)" },
};
const FG = "var(--lane-fg, var(--fg, currentColor))";
const GRID = "var(--lane-grid, var(--edge, rgba(128, 128, 128, 0.45)))";
const BG = "var(--lane-bg, var(--bg, Canvas))";
const MARKER = "var(--lane-marker, var(--fg, currentColor))";

// Where in a lane each kind is drawn: ringing/joined as the lane's bar, the others as stripes over it.
const TRACK = {
  ringing: [4, LANE_H - 8, 0.55], joined: [4, LANE_H - 8, 0.35],
  hold: [8, 10, 1], muted: [20, 7, 1], coaching: [29, 7, 1], monitor: [29, 7, 1], barge: [29, 7, 1],
};

const state = new WeakMap(); // container -> what the event handlers need from the latest draw

function el(name, attributes = {}, style = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  for (const [key, value] of Object.entries(style)) node.style.setProperty(key, value);
  return node;
}

function svgText(x, y, content, { size = 12, anchor = "start", weight = "normal", fill = FG } = {}) {
  const node = el("text", { x, y, "font-size": size, "text-anchor": anchor, "font-weight": weight }, { fill });
  node.textContent = content;
  return node;
}

// Milliseconds since the epoch, keeping the microseconds the log stores (Date.parse would drop them, and
// events stored within one millisecond must stay in order).
export function timeOf(iso) {
  const match = /\.(\d+)/.exec(iso);
  const whole = Date.parse(match ? iso.replace(match[0], "") : iso);
  return match ? whole + Number(`0.${match[1]}`) * 1000 : whole;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

function clock(ms, precise) {
  const date = new Date(ms);
  const base = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return precise ? `${base}.${pad(date.getMilliseconds(), 3)}` : base;
}

const STEPS = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000,
               900000, 1800000, 3600000, 7200000];

function ticks(start, end, width) {
  const wanted = Math.max(2, Math.floor(width / 110));
  const step = STEPS.find((s) => (end - start) / s <= wanted) ?? STEPS[STEPS.length - 1];
  const first = Math.ceil(start / step) * step;
  const result = [];
  for (let t = first; t <= end; t += step) result.push(t);
  return { step, result };
}

function describe(event) {
  return `${clock(timeOf(event.at), true)}, ${event.type}${event.actor ? ` by ${event.actor}` : ""} (version ${event.version})`;
}

const chartWidth = (container) => Math.max(560, Math.round(container.clientWidth || 900));

// The chart's skeleton, made once per container and kept across redraws so that the slider keeps its focus
// and a drag in the chart its pointer capture when the page redraws on a new event.
function skeleton(container) {
  const known = state.get(container);
  if (known && container.contains(known.svg)) return known;
  container.replaceChildren();
  const svg = el("svg", { class: "swimlane-chart", role: "img", width: "100%" });
  svg.style.setProperty("touch-action", "none");
  svg.style.setProperty("cursor", "crosshair");
  svg.style.setProperty("user-select", "none");
  svg.style.setProperty("display", "block");
  const legend = document.createElement("ul");
  legend.className = "swimlane-legend";
  legend.setAttribute("aria-label", "Legend of the swim-lane chart");
  const row = document.createElement("div");
  row.className = "swimlane-scrub";
  const label = document.createElement("label");
  label.htmlFor = "scrub";
  label.textContent = "Moment";
  const scrub = document.createElement("input");
  scrub.type = "range";
  scrub.id = "scrub";
  scrub.step = "1";
  const output = document.createElement("output");
  output.setAttribute("for", "scrub");
  output.setAttribute("aria-live", "off"); // the slider's aria-valuetext already says it
  output.className = "swimlane-moment";
  // Whole call or its last five minutes (shown only when the call is longer than that): a toggle button.
  const zoom = document.createElement("button");
  zoom.type = "button";
  zoom.id = "swimlane-zoom";
  zoom.textContent = "Last 5 minutes";
  zoom.setAttribute("aria-pressed", "false");
  zoom.title = "Show only the last 5 minutes of the call (press again for the whole call)";
  zoom.hidden = true;
  row.append(label, scrub, output, zoom);
  for (const [node, style] of [[legend, { display: "flex", "flex-wrap": "wrap", gap: "0.4em 1.2em",
                                          "list-style": "none", padding: "0", margin: "0.4em 0" }],
                               [row, { display: "flex", "flex-wrap": "wrap", "align-items": "center",
                                       gap: "0.4em 0.8em" }],
                               [scrub, { flex: "1 1 16em", "min-width": "12em" }]]) {
    for (const [key, value] of Object.entries(style)) node.style.setProperty(key, value);
  }
  container.append(svg, legend, row);
  const entry = { svg, legend, scrub, output, zoom, zoomed: false, dragging: false, reported: undefined, last: null,
                  width: 0 };
  state.set(container, entry);
  // Drawn at the container's width (so that text keeps its size): drawn again when that width changes, in the
  // next frame (never inside the observer's callback, which would resize what it observes).
  if (typeof ResizeObserver === "function") {
    let frame = 0;
    new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const s = state.get(container);
        if (!s?.last || !container.contains(s.svg)) return;
        if (Math.abs(chartWidth(container) - s.width) < 8) return;
        drawSwimlane(container, s.last.timeline, s.last.events, { onScrub: s.onScrub, moment: s.reported ?? null });
      });
    }).observe(container);
  }

  const current = () => state.get(container);
  scrub.addEventListener("input", () => scrubTo(current(), Number(scrub.value)));
  zoom.addEventListener("click", () => {
    const s = current();
    s.zoomed = !s.zoomed;
    if (!s.last) return;
    drawSwimlane(container, s.last.timeline, s.last.events, { onScrub: s.onScrub, moment: s.reported ?? null });
  });
  const fromPointer = (event) => {
    const s = current();
    if (!s.scale) return;
    const matrix = s.svg.getScreenCTM();
    if (!matrix) return;
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    scrubTo(s, s.versionAt(s.scale.timeAt(point.x)));
  };
  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    current().dragging = true;
    svg.setPointerCapture(event.pointerId);
    event.preventDefault();
    // A bar drawn wider than its interval lasted: the press means that interval, wherever on the bar it is.
    const bar = event.target instanceof Element ? event.target.closest("rect[data-widened]") : null;
    if (bar) scrubTo(current(), Number(bar.dataset.fromVersion));
    else fromPointer(event);
  });
  svg.addEventListener("pointermove", (event) => {
    if (current().dragging) fromPointer(event);
  });
  const stop = (event) => {
    current().dragging = false;
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
  };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);
  return entry;
}

// Move to a version: the slider, the marker, and the page (once per change of version; the latest is live).
function scrubTo(s, version) {
  if (!s.versions.length) return;
  const clamped = Math.min(Math.max(version, s.versions[0]), s.versions[s.versions.length - 1]);
  const moment = clamped >= s.versions[s.versions.length - 1] ? null : clamped;
  show(s, moment);
  if (moment === s.reported) return;
  s.reported = moment;
  s.onScrub?.(moment);
}

function show(s, moment) {
  const last = s.versions[s.versions.length - 1];
  const value = moment ?? last;
  s.scrub.value = String(value);
  const event = s.byVersion.get(value);
  const text = moment === null ? `live${event ? ` (latest: ${describe(event)})` : ""}`
    : event ? describe(event) : `version ${value}`;
  s.scrub.setAttribute("aria-valuetext", text);
  s.output.textContent = text;
  const marker = s.svg.querySelector(".swimlane-marker");
  if (!marker) return;
  if (moment === null || !event || !s.scale) {
    marker.setAttribute("visibility", "hidden");
    delete marker.dataset.version;
    return;
  }
  const x = s.scale.x(timeOf(event.at));
  if (x < s.scale.left) { // before the zoomed window
    marker.setAttribute("visibility", "hidden");
    delete marker.dataset.version;
    return;
  }
  marker.setAttribute("visibility", "visible");
  marker.dataset.version = String(moment);
  marker.dataset.at = event.at;
  for (const line of marker.querySelectorAll("line")) {
    line.setAttribute("x1", x.toFixed(1));
    line.setAttribute("x2", x.toFixed(1));
  }
}

// timeline: GET /timeline; events: the conference's events (at, version, type, actor), oldest first;
// onScrub(version | null): called when the user moves to another moment (null: back to the latest = live);
// moment: the version shown now (null when live).
export function drawSwimlane(container, timeline, events, { onScrub, moment } = {}) {
  const s = skeleton(container);
  const sorted = [...(events ?? [])].sort((a, b) => a.version - b.version);
  const participants = timeline?.participants ?? [];
  s.onScrub = onScrub;
  s.byVersion = new Map(sorted.map((e) => [e.version, e]));
  s.versions = sorted.map((e) => e.version);
  if (!s.versions.length && timeline?.version) s.versions = [timeline.version];
  s.reported = moment ?? null;

  const now = Date.now();
  const starts = [...sorted.map((e) => timeOf(e.at)),
                  ...participants.flatMap((p) => p.intervals.map((i) => timeOf(i.from)))];
  const open = participants.some((p) => p.intervals.some((i) => i.to === null));
  const ends = [...starts, ...participants.flatMap((p) => p.intervals.filter((i) => i.to).map((i) => timeOf(i.to)))];
  if (open) ends.push(now);
  const first = starts.length ? Math.min(...starts) : now;
  let end = ends.length ? Math.max(...ends) : now;
  if (end - first < 1) end = first + 1000;
  const long = end - first > ZOOM_MS * 1.2;
  s.zoom.hidden = !long;
  const zoomed = long && s.zoomed;
  // A toggle keeps its name; aria-pressed says its state, and so does its look.
  s.zoom.setAttribute("aria-pressed", String(zoomed));
  const pressed = { background: "var(--selected, Highlight)", "border-color": "var(--accent, currentColor)" };
  for (const [key, value] of Object.entries(pressed)) {
    if (zoomed) s.zoom.style.setProperty(key, value);
    else s.zoom.style.removeProperty(key);
  }
  const start = zoomed ? end - ZOOM_MS : first;

  const width = chartWidth(container);
  s.width = width;
  s.last = { timeline, events };
  const height = TOP + participants.length * LANE_H + AXIS_H;
  const plot = width - LABEL_W - RIGHT;
  const x = (t) => LABEL_W + ((t - start) / (end - start)) * plot;
  const timeAt = (px) => start + ((Math.min(Math.max(px, LABEL_W), LABEL_W + plot) - LABEL_W) / plot) * (end - start);
  s.scale = { x, timeAt, left: LABEL_W - 0.5 };
  // The latest version stored at or before a time (events stored together share their time: the last of them).
  s.versionAt = (t) => {
    let found = sorted.length ? sorted[0].version : 0;
    for (const event of sorted) if (timeOf(event.at) <= t) found = event.version;
    return found;
  };

  const svg = s.svg;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("font-family", "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif");
  svg.setAttribute("aria-label", `Swim-lane chart of ${participants.length} participants from ${clock(start)} to ${
    clock(end)}; use the Moment slider below to scrub`);

  const grid = el("g", { class: "swimlane-axis" });
  const axisY = TOP + participants.length * LANE_H;
  const { step, result } = ticks(start, end, plot);
  for (const t of result) {
    const px = x(t).toFixed(1);
    // A label near either end is anchored inside the chart rather than cut off.
    const anchor = x(t) > width - 45 ? "end" : x(t) < LABEL_W + 45 ? "start" : "middle";
    const lx = anchor === "end" ? width - 2 : anchor === "start" ? Math.max(x(t), LABEL_W) : x(t);
    grid.append(el("line", { x1: px, x2: px, y1: TOP, y2: axisY + 5 }, { stroke: GRID, "stroke-width": "1px" }),
                svgText(lx.toFixed(1), axisY + 18, clock(t, step < 1000), { size: 11, anchor }));
  }
  grid.append(el("line", { x1: LABEL_W, x2: LABEL_W + plot, y1: axisY, y2: axisY }, { stroke: FG, "stroke-width": "1px" }));
  for (const event of sorted) {
    if (timeOf(event.at) < start) continue; // before the zoomed window
    const px = x(timeOf(event.at)).toFixed(1);
    const tick = el("line", { class: "swimlane-event", x1: px, x2: px, y1: axisY - 4, y2: axisY + 4,
                              "data-version": event.version, "data-type": event.type }, { stroke: FG, "stroke-width": "1px" });
    const title = el("title");
    title.textContent = describe(event);
    tick.append(title);
    grid.append(tick);
  }
  if (open) grid.append(svgText(LABEL_W + plot, axisY + 30, "now", { size: 11, anchor: "end" }));
  svg.append(grid);

  participants.forEach((participant, index) => {
    const y = TOP + index * LANE_H;
    const lane = el("g", { "data-lane": participant.label, "data-role": participant.role });
    lane.append(el("rect", { class: "swimlane-track", x: LABEL_W, y: y + 2, width: plot, height: LANE_H - 4 },
                   { fill: "none", stroke: GRID, "stroke-width": "1px" }),
                svgText(8, y + LANE_H / 2 - 1, participant.label, { size: 13, weight: "600" }),
                svgText(8, y + LANE_H / 2 + 13, participant.role, { size: 11 }));
    // Base bars first, stripes over them.
    const intervals = [...participant.intervals].sort((a, b) => (TRACK[a.kind][2] < 1 ? 0 : 1) - (TRACK[b.kind][2] < 1 ? 0 : 1));
    for (const interval of intervals) {
      const kind = KINDS[interval.kind] ? interval.kind : "joined";
      const [offset, barHeight, opacity] = TRACK[kind];
      const from = x(Math.max(timeOf(interval.from), start));
      const to = x(interval.to ? timeOf(interval.to) : Math.max(now, end));
      const outside = to < LABEL_W; // wholly before the zoomed window: kept (with its data), not shown
      // Too short to see or hit: widened to MIN_BAR around its middle, inside the plot.
      const widened = !outside && to - from < MIN_BAR;
      const left = widened ? Math.min(Math.max((from + to) / 2 - MIN_BAR / 2, LABEL_W), LABEL_W + plot - MIN_BAR)
        : from;
      const rect = el("rect", {
        x: left.toFixed(1), y: y + offset, width: (outside ? 0 : widened ? MIN_BAR : to - from).toFixed(1),
        height: barHeight, rx: widened ? 1 : 2,
        "data-kind": interval.kind, "data-from": interval.from, "data-to": interval.to ?? "",
        "data-from-version": interval.from_version, "data-to-version": interval.to_version ?? "",
      }, { fill: KINDS[kind].colour, "fill-opacity": String(opacity), stroke: KINDS[kind].colour, "stroke-width": "1px" });
      if (outside) rect.setAttribute("visibility", "hidden");
      if (widened) rect.dataset.widened = "true";
      if (interval.with) rect.dataset.with = interval.with;
      if (interval.actor) rect.dataset.actor = interval.actor;
      if (interval.ended_by) rect.dataset.endedBy = interval.ended_by;
      const title = el("title");
      const whom = interval.with ? ` ${interval.with}` : "";
      const until = interval.to ? `${clock(timeOf(interval.to), true)} (version ${interval.to_version})` : "now";
      title.textContent = `${participant.label} ${KINDS[kind].label}${whom}: ${clock(timeOf(interval.from), true)} ` +
        `(version ${interval.from_version}) to ${until}${interval.actor ? `; started by ${interval.actor}` : ""}` +
        `${interval.ended_by ? `, ended by ${interval.ended_by}` : ""}`;
      rect.append(title);
      lane.append(rect);
    }
    svg.append(lane);
  });

  const marker = el("g", { class: "swimlane-marker", visibility: "hidden" });
  marker.append(el("line", { x1: 0, x2: 0, y1: 0, y2: axisY + 6 }, { stroke: BG, "stroke-width": "5px" }),
                el("line", { x1: 0, x2: 0, y1: 0, y2: axisY + 6 }, { stroke: MARKER, "stroke-width": "2px" }));
  marker.style.setProperty("pointer-events", "none");
  svg.append(marker);

  s.legend.replaceChildren(...Object.entries(KINDS).map(([kind, { label, colour }]) => {
    const item = document.createElement("li");
    item.dataset.kind = kind;
    const swatch = document.createElement("span");
    swatch.setAttribute("aria-hidden", "true");
    for (const [key, value] of Object.entries({ display: "inline-block", width: "1.6em", height: "0.8em",
                                                 "margin-right": "0.4em", "vertical-align": "middle",
                                                 background: colour, "border-radius": "2px" })) {
      swatch.style.setProperty(key, value);
    }
    item.append(swatch, label);
    return item;
  }));

  const scrub = s.scrub;
  scrub.min = String(s.versions[0] ?? 0);
  scrub.max = String(s.versions[s.versions.length - 1] ?? 0);
  scrub.disabled = s.versions.length < 2;
  show(s, moment ?? null);
}

// Each participant as it was at `version`, from the timeline's intervals containing it (from_version <= v <
// to_version, or still open): {label, role, status: ringing|joined|left, mode, coach, coaching, hold, muted}.
// A participant whose first interval starts after `version` was not there yet, and is left out.
export function participantsAt(timeline, version) {
  const contains = (i) => i.from_version <= version && (i.to_version === null || i.to_version === undefined
    || version < i.to_version);
  const result = [];
  for (const participant of timeline?.participants ?? []) {
    if (!participant.intervals.some((i) => i.from_version <= version)) continue;
    const now = participant.intervals.filter(contains);
    const has = (kind) => now.some((i) => i.kind === kind);
    const coaching = now.find((i) => i.kind === "coaching");
    let mode = "normal";
    if (participant.role === "supervisor") {
      mode = coaching ? "coach" : has("barge") ? "barge" : has("monitor") ? "monitor" : "normal";
    }
    result.push({
      label: participant.label,
      role: participant.role,
      status: has("joined") ? "joined" : has("ringing") ? "ringing" : "left",
      mode,
      coach: coaching?.with ?? null,
      coaching: Boolean(coaching),
      hold: has("hold"),
      muted: has("muted"),
    });
  }
  return result;
}
