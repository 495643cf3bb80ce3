// The drawing of who hears whom: an SVG graph with one node per joined participant (and one for music when
// anyone hears it) and one arrow per "A hears B", from the speaker B to the listener A (the way sound flows),
// plus the same facts as a text list for screen readers and for reading at a glance.
//
// Plain ES module, no library. Colours are CSS custom properties with fallbacks that read on dark and light
// backgrounds, so a page may restyle the drawing by setting them (e.g. in console.css):
//   --hears-voice, --hears-whisper, --hears-music: arrows;  --hears-fg, --hears-bg, --hears-node: text, halo, fill;
//   --role-customer, --role-agent, --role-supervisor, --role-external: node outlines;  --hears-muted: muted mark.
// They are set through the CSSOM (element.style), which a Content-Security-Policy without 'unsafe-inline' allows.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 420;
const CENTER = { x: WIDTH / 2, y: 195 };
const RADII = { x: 225, y: 130 }; // the ellipse the participants sit on
const NODE_R = 26;
const MUSIC_R = 22;
const ROLE_ORDER = ["customer", "agent", "external", "supervisor"];

const COLOUR = {
  fg: "var(--hears-fg, var(--fg, currentColor))",
  bg: "var(--hears-bg, var(--bg, Canvas))",
  node: "var(--hears-node, var(--tile, Canvas))",
  voice: "var(--hears-voice, #3a7bd5)",
  whisper: "var(--hears-whisper, #c46208)",
  music: "var(--hears-music, #8e5bd6)",
  muted: "var(--hears-muted, #d64545)",
  customer: "var(--role-customer, #1a8a5e)",
  agent: "var(--role-agent, #3a7bd5)",
  supervisor: "var(--role-supervisor, #c46208)",
  external: "var(--role-external, #7d8590)",
};

function el(name, attributes = {}, style = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  for (const [key, value] of Object.entries(style)) node.style.setProperty(key, value);
  return node;
}

function text(x, y, content, { size = 13, weight = "normal", anchor = "middle", fill = COLOUR.fg } = {}) {
  // A halo in the background colour keeps labels readable where an arrow passes under them.
  const node = el("text", { x: round(x), y: round(y), "text-anchor": anchor, "font-size": size,
                            "font-weight": weight }, {
    fill, stroke: COLOUR.bg, "stroke-width": "4px", "paint-order": "stroke", "stroke-linejoin": "round",
  });
  node.textContent = content;
  return node;
}

const round = (value) => Math.round(value * 10) / 10;

// Where each node sits: customers first at the left of an ellipse, then agents, externals and supervisors
// clockwise, evenly spaced. No three points of an ellipse are in line, so a chord between two nodes never runs
// through a third; the music node sits at the centre, which the curved arrows bulge around.
function layout(nodes) {
  const at = new Map();
  const count = nodes.length;
  nodes.forEach((node, index) => {
    if (count === 1) {
      at.set(node.label, { x: CENTER.x - RADII.x, y: CENTER.y, angle: Math.PI });
      return;
    }
    const angle = Math.PI + (2 * Math.PI * index) / count;
    at.set(node.label, { x: CENTER.x + RADII.x * Math.cos(angle), y: CENTER.y + RADII.y * Math.sin(angle), angle });
  });
  return at;
}

function shape(role, x, y, stroke, held) {
  const style = { fill: COLOUR.node, stroke, "stroke-width": "3px" };
  if (held) style["stroke-dasharray"] = "6 4";
  const r = NODE_R;
  if (role === "agent") {
    return el("rect", { x: round(x - r * 0.9), y: round(y - r * 0.9), width: round(r * 1.8), height: round(r * 1.8),
                        rx: 8 }, style);
  }
  if (role === "supervisor") {
    const points = [[x, y - r * 1.15], [x + r * 1.15, y], [x, y + r * 1.15], [x - r * 1.15, y]];
    return el("polygon", { points: points.map((p) => p.map(round).join(",")).join(" ") }, style);
  }
  if (role === "external") {
    const points = [0, 1, 2, 3, 4, 5].map((k) => {
      const a = Math.PI / 6 + (k * Math.PI) / 3;
      return [x + r * Math.cos(a), y + r * Math.sin(a)];
    });
    return el("polygon", { points: points.map((p) => p.map(round).join(",")).join(" ") }, style);
  }
  return el("circle", { cx: round(x), cy: round(y), r }, style);
}

const ROLE_LETTER = { customer: "C", agent: "A", supervisor: "S", external: "E" };

function caption(participant) {
  const parts = [participant.role ?? "participant"];
  if (participant.role === "supervisor" && participant.mode && participant.mode !== "normal") {
    parts.push(participant.mode === "coach" && participant.coach ? `coach of ${participant.coach}` : participant.mode);
  }
  if (participant.hold) parts.push("on hold");
  if (participant.muted) parts.push("muted");
  return parts.join(" · ");
}

function drawNode(participant, place) {
  const { x, y } = place;
  const role = participant.role ?? "external";
  const group = el("g", { "data-node": participant.label, "data-role": role });
  if (participant.role === "supervisor") group.dataset.mode = participant.mode ?? "normal";
  if (participant.hold) group.dataset.hold = "true";
  if (participant.muted) group.dataset.muted = "true";
  const title = el("title");
  title.textContent = `${participant.label}: ${caption(participant)}`;
  group.append(title, shape(role, x, y, COLOUR[role] ?? COLOUR.external, participant.hold));
  if (participant.hold) group.style.setProperty("opacity", "0.8");
  group.append(text(x, y + 5, ROLE_LETTER[role] ?? "?", { size: 15, weight: "bold", fill: COLOUR[role] }));
  // Labels go outside the ellipse: above the nodes of its upper half, below the others.
  const above = Math.sin(place.angle) < -0.3;
  const nameY = above ? y - NODE_R - 22 : y + NODE_R + 17;
  group.append(text(x, nameY, participant.label, { size: 14, weight: "600" }),
               text(x, nameY + 15, caption(participant), { size: 12 }));
  if (participant.hold) group.append(holdMark(x + NODE_R * 0.85, y - NODE_R * 0.85));
  if (participant.muted) group.append(mutedMark(x + NODE_R * 0.85, y + NODE_R * 0.85));
  return group;
}

// On hold: a pause sign in a badge on the node's shoulder.
function holdMark(x, y) {
  const mark = el("g", { class: "mark", "data-mark": "hold" });
  mark.append(el("circle", { cx: round(x), cy: round(y), r: 9 }, { fill: COLOUR.music, stroke: COLOUR.bg,
                                                                    "stroke-width": "2px" }),
              el("rect", { x: round(x - 4), y: round(y - 4.5), width: 3, height: 9 }, { fill: COLOUR.bg }),
              el("rect", { x: round(x + 1), y: round(y - 4.5), width: 3, height: 9 }, { fill: COLOUR.bg }));
  return mark;
}

// Muted: a struck-through loudspeaker-ish badge (a circle with a slash reads as "off" at this size).
function mutedMark(x, y) {
  const mark = el("g", { class: "mark", "data-mark": "muted" });
  mark.append(el("circle", { cx: round(x), cy: round(y), r: 9 }, { fill: COLOUR.muted, stroke: COLOUR.bg,
                                                                    "stroke-width": "2px" }),
              el("line", { x1: round(x - 5), y1: round(y + 5), x2: round(x + 5), y2: round(y - 5) },
                 { stroke: COLOUR.bg, "stroke-width": "2.5px", "stroke-linecap": "round" }));
  return mark;
}

function drawMusic() {
  const { x, y } = CENTER;
  const group = el("g", { "data-node": "music", "data-role": "music" });
  const title = el("title");
  title.textContent = "hold or wait music";
  group.append(title,
               el("circle", { cx: x, cy: y, r: MUSIC_R }, { fill: COLOUR.node, stroke: COLOUR.music,
                                                             "stroke-width": "3px" }),
               text(x, y + 7, "♪", { size: 22, weight: "bold", fill: COLOUR.music }),
               text(x, y + MUSIC_R + 15, "music", { size: 12 }));
  return group;
}

// The arrow's geometry: a quadratic curve bent to the right of its direction, so that the two arrows of a
// two-way talk bend apart and both show; trimmed to the nodes' outlines, with the head at the listener.
function curve(from, to, fromR, toR, bend) {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy) || 1;
  const normal = { x: -dy / length, y: dx / length };
  const offset = bend ? Math.min(70, 0.22 * length) : 0;
  const control = { x: (from.x + to.x) / 2 + normal.x * offset, y: (from.y + to.y) / 2 + normal.y * offset };
  const towards = (p, q, distance) => {
    const d = Math.hypot(q.x - p.x, q.y - p.y) || 1;
    return { x: p.x + ((q.x - p.x) / d) * distance, y: p.y + ((q.y - p.y) / d) * distance };
  };
  const start = towards(from, control, fromR + 3);
  const tip = towards(to, control, toR + 4);
  const direction = { x: tip.x - control.x, y: tip.y - control.y };
  const d = Math.hypot(direction.x, direction.y) || 1;
  const unit = { x: direction.x / d, y: direction.y / d };
  const base = { x: tip.x - unit.x * 11, y: tip.y - unit.y * 11 };
  const head = [tip, { x: base.x - unit.y * 6, y: base.y + unit.x * 6 }, { x: base.x + unit.y * 6, y: base.y - unit.x * 6 }];
  const middle = { x: 0.25 * start.x + 0.5 * control.x + 0.25 * base.x, y: 0.25 * start.y + 0.5 * control.y + 0.25 * base.y };
  return { path: `M${round(start.x)},${round(start.y)} Q${round(control.x)},${round(control.y)} ${round(base.x)},${round(base.y)}`,
           head: head.map((p) => `${round(p.x)},${round(p.y)}`).join(" "), middle };
}

function drawEdge(listener, speaker, kind, from, to) {
  const music = kind === "music";
  const geometry = curve(from, to, music ? MUSIC_R : NODE_R, NODE_R, !music);
  const colour = COLOUR[kind];
  const group = el("g", { class: "edge", "data-listener": listener, "data-speaker": speaker, "data-kind": kind });
  const title = el("title");
  title.textContent = kind === "whisper" ? `${listener} hears ${speaker} (whisper)` : `${listener} hears ${speaker}`;
  const line = { fill: "none", stroke: colour, "stroke-width": kind === "whisper" ? "3px" : "2.5px" };
  if (kind === "whisper") line["stroke-dasharray"] = "8 5";
  if (music) line["stroke-dasharray"] = "2 4";
  if (music) line["stroke-linecap"] = "round";
  group.append(title, el("path", { d: geometry.path }, line), el("polygon", { points: geometry.head },
                                                                  { fill: colour, stroke: colour }));
  if (kind === "whisper") {
    group.append(text(geometry.middle.x, geometry.middle.y + 4, "whisper", { size: 12, weight: "600", fill: colour }));
  }
  return group;
}

function listItem(listener, heard, music, whispers) {
  const item = document.createElement("li");
  item.dataset.listener = listener;
  const names = heard.map((speaker) => (whispers.has(`${listener}\n${speaker}`) ? `${speaker} (whisper)` : speaker));
  if (music) names.push("music");
  item.textContent = `${listener} hears ${names.length ? names.join(", ") : "nobody"}`;
  return item;
}

// participants: [{label, role, status, mode, coach, hold, muted}]; audibility: {hears: {listener: [speaker]},
// music: [listener]}. Replaces the content of `svg` and `list`.
export function drawHears(svg, list, participants, audibility) {
  const hears = audibility?.hears ?? {};
  const music = audibility?.music ?? [];
  const byLabel = new Map(participants.map((p) => [p.label, p]));
  const shown = participants.filter((p) => p.status === "joined");
  // Anyone the audibility names is drawn too (it is the truth about sound), even if the participants given
  // do not list them as joined.
  for (const label of [...Object.keys(hears), ...Object.values(hears).flat(), ...music]) {
    if (!shown.some((p) => p.label === label)) {
      shown.push(byLabel.get(label) ?? { label, role: "external", status: "joined", mode: "normal", coach: null,
                                         hold: false, muted: false });
    }
  }
  const rank = (p) => {
    const at = ROLE_ORDER.indexOf(p.role);
    return at < 0 ? ROLE_ORDER.length : at;
  };
  const ordered = shown.map((p, index) => ({ p, index })).sort((a, b) => rank(a.p) - rank(b.p) || a.index - b.index)
    .map(({ p }) => p);
  const places = layout(ordered);

  const whispers = new Set();
  const edges = [];
  for (const [listener, speakers] of Object.entries(hears)) {
    for (const speaker of speakers) {
      const source = byLabel.get(speaker);
      const coaching = source && source.role === "supervisor" && (source.mode === "coach" || source.coaching);
      const kind = coaching && source.coach === listener ? "whisper" : "voice";
      if (kind === "whisper") whispers.add(`${listener}\n${speaker}`);
      edges.push([listener, speaker, kind]);
    }
  }

  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  if (!svg.hasAttribute("role")) svg.setAttribute("role", "img");
  svg.setAttribute("font-family", "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif");
  const edgeLayer = el("g", { class: "edges" });
  const nodeLayer = el("g", { class: "nodes" });
  for (const [listener, speaker, kind] of edges) {
    const from = places.get(speaker);
    const to = places.get(listener);
    if (from && to) edgeLayer.append(drawEdge(listener, speaker, kind, from, to));
  }
  for (const listener of music) {
    const to = places.get(listener);
    if (to) edgeLayer.append(drawEdge(listener, "music", "music", CENTER, to));
  }
  // Whisper labels above the voice arrows: moved last in their layer.
  for (const whisper of edgeLayer.querySelectorAll('g.edge[data-kind="whisper"]')) edgeLayer.append(whisper);
  for (const participant of ordered) nodeLayer.append(drawNode(participant, places.get(participant.label)));
  if (music.length) nodeLayer.append(drawMusic());
  svg.append(edgeLayer, nodeLayer, legend());
  if (!ordered.length) svg.append(text(CENTER.x, CENTER.y, "nobody is in the conference", { size: 14 }));

  list.replaceChildren();
  const listeners = [...Object.keys(hears)];
  for (const label of music) if (!listeners.includes(label)) listeners.push(label);
  const position = (label) => {
    const at = ordered.findIndex((p) => p.label === label);
    return at < 0 ? ordered.length : at;
  };
  listeners.sort((a, b) => position(a) - position(b));
  for (const listener of listeners) {
    list.append(listItem(listener, hears[listener] ?? [], music.includes(listener), whispers));
  }
  if (!listeners.length) {
    const item = document.createElement("li");
    item.textContent = "Nobody hears anybody.";
    list.append(item);
  }
}

// What the three kinds of arrow look like, in the drawing's bottom-left corner.
function legend() {
  const group = el("g", { class: "legend", "aria-hidden": "true" });
  const kinds = [["voice", "hears", null], ["whisper", "coach's whisper", "8 5"], ["music", "hears music", "2 4"]];
  kinds.forEach(([kind, label, dash], index) => {
    const x = 8 + index * 150;
    const y = HEIGHT - 10;
    const style = { stroke: COLOUR[kind], "stroke-width": "2.5px" };
    if (dash) style["stroke-dasharray"] = dash;
    group.append(el("line", { x1: x, y1: y - 4, x2: x + 26, y2: y - 4 }, style),
                 el("polygon", { points: `${x + 34},${y - 4} ${x + 25},${y - 9} ${x + 25},${y + 1}` },
                    { fill: COLOUR[kind] }),
                 text(x + 40, y, label, { size: 12, anchor: "start" }));
  });
  return group;
}
