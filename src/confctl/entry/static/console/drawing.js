// The drawing of who hears whom: an SVG graph with one node per joined participant (and one for music when
// anyone hears it) and one arrow per "A hears B", from the speaker B to the listener A (the way sound flows),
// plus the same facts as a text list for screen readers and for reading at a glance.
//
// Layout: the participants sit on an ellipse (customers first, at the left, then agents, externals and
// supervisors clockwise), each with its name and caption outside the ellipse. The drawing is laid out at the
// width it is shown at (one unit of the viewBox is one CSS pixel, so text keeps its size; it is drawn again when
// that width changes) and within the element's max-height. Every placement is chosen among candidates by a cost
// that forbids overlaps: labels never cover another node or label, arrows bend around nodes they would cross
// (the two arrows of a two-way talk bend apart, so both show), arrowheads at one node do not land on each
// other, the music node sits where no arrow between participants passes (beside its listeners, outside the
// ellipse), and the "whisper" label sits beside its arrow, never under a node. Text has a halo in the panel's
// colour (paint-order: stroke) so an arrow passing under a label never makes it unreadable.
//
// Plain ES module, no library. Colours are CSS custom properties with fallbacks that read on dark and light
// backgrounds, so a page may restyle the drawing by setting them (e.g. in console.css):
//   --hears-voice, --hears-whisper, --hears-music: arrows;  --hears-fg, --hears-bg, --hears-node: text, halo, fill;
//   --role-customer, --role-agent, --role-supervisor, --role-external: node outlines;  --hears-muted: muted mark.
// They are set through the CSSOM (element.style), which a Content-Security-Policy without 'unsafe-inline' allows.

const SVG = "http://www.w3.org/2000/svg";
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
const SIZE = { name: 14, caption: 12.5, edge: 12.5, legend: 12.5, letter: 15, music: 22 };
const NODE_R = 24;
const NODE_EXT = 30; // half the side of the box a node takes, its hold and muted badges included
const MUSIC_R = 20;
const SHAPE_R = NODE_R * 1.35; // the farthest a node's shape reaches from its centre (an agent's corner), its outline in
const MARGIN = 8;
const GAP = 4; // the least room between two things that must not touch
const NAME_MAX = 150; // a longer name is cut with an ellipsis in the drawing (the list and the tooltip say it all)
const DEFAULT_WIDTH = 640; // when the drawing is not on screen (nothing to measure)
const ROLE_ORDER = ["customer", "agent", "external", "supervisor"];
const HARD = 1000; // the cost of an overlap: any candidate without one wins over every candidate with one

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

const round = (value) => Math.round(value * 10) / 10;

function el(name, attributes = {}, style = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  for (const [key, value] of Object.entries(style)) node.style.setProperty(key, value);
  return node;
}

function text(x, y, content, { size = SIZE.caption, weight = "normal", anchor = "middle", fill = COLOUR.fg,
                               cls = null } = {}) {
  // A halo in the panel's colour keeps labels readable where an arrow passes under them.
  const node = el("text", { x: round(x), y: round(y), "text-anchor": anchor, "font-size": size,
                            "font-weight": weight }, {
    fill, stroke: COLOUR.bg, "stroke-width": "4px", "paint-order": "stroke", "stroke-linejoin": "round",
  });
  if (cls) node.setAttribute("class", cls);
  node.textContent = content;
  return node;
}

// ---- measuring text (a canvas measures with the same fonts the SVG draws with, on screen or not) ----------

let context;
function textWidth(content, size, weight = "normal") {
  if (context === undefined) context = document.createElement("canvas").getContext("2d") ?? null;
  if (!context) return content.length * size * 0.62;
  context.font = `${weight} ${size}px ${FONT}`;
  return context.measureText(content).width;
}

// A line's box: 1.2 em tall, the baseline where an SVG text's box (the font's ascent and descent) fits in it.
const lineHeight = (size) => Math.ceil(size * 1.22);
const baseline = (top, size) => top + size * 0.97;

function fit(content, size, weight, width) {
  if (textWidth(content, size, weight) <= width) return content;
  let cut = content;
  while (cut.length > 1 && textWidth(`${cut}…`, size, weight) > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

// ---- geometry ------------------------------------------------------------------------------------------------

const boxesOverlap = (a, b, pad = 0) => a.x < b.x + b.w + pad && b.x < a.x + a.w + pad
  && a.y < b.y + b.h + pad && b.y < a.y + a.h + pad;
const inBox = (p, b, pad = 0) => p.x > b.x - pad && p.x < b.x + b.w + pad && p.y > b.y - pad && p.y < b.y + b.h + pad;
const nodeBox = (p, ext = NODE_EXT) => ({ x: p.x - ext, y: p.y - ext, w: 2 * ext, h: 2 * ext });
const unit = (from, to) => {
  const d = Math.hypot(to.x - from.x, to.y - from.y) || 1;
  return { x: (to.x - from.x) / d, y: (to.y - from.y) / d };
};
const angleOf = (v) => Math.atan2(v.y, v.x);
const angleBetween = (a, b) => {
  const d = Math.abs(a - b) % (2 * Math.PI);
  return d > Math.PI ? 2 * Math.PI - d : d;
};
const DEG = Math.PI / 180;

// How far from a node's centre its outline is, in a direction (so that arrows start and end at the shape).
function outline(role, direction) {
  const ax = Math.abs(direction.x);
  const ay = Math.abs(direction.y);
  if (role === "agent") return (NODE_R * 0.9) / Math.max(ax, ay, 1e-6);
  if (role === "supervisor") return (NODE_R * 1.15) / Math.max(ax + ay, 1e-6);
  if (role === "music") return MUSIC_R;
  return NODE_R;
}

// ---- what the nodes say --------------------------------------------------------------------------------------

const ROLE_LETTER = { customer: "C", agent: "A", supervisor: "S", external: "E" };

function states(participant) {
  const parts = [];
  if (participant.role === "supervisor" && participant.mode && participant.mode !== "normal") {
    parts.push(participant.mode === "coach" && participant.coach ? `coach of ${participant.coach}` : participant.mode);
  }
  if (participant.hold) parts.push("on hold");
  // A monitoring supervisor is muted by definition: "monitor" says it.
  if (participant.muted && !(participant.role === "supervisor" && participant.mode === "monitor")) parts.push("muted");
  return parts;
}

function caption(participant) {
  return [participant.role ?? "participant", ...states(participant)].join(" · ");
}

// The label block under (or beside) a node: its name, its role, then its mode and states on a third line.
function block(participant) {
  const lines = [{ content: fit(participant.label, SIZE.name, "600", NAME_MAX), size: SIZE.name, weight: "600" },
                 { content: participant.role ?? "participant", size: SIZE.caption, weight: "normal" }];
  const rest = states(participant);
  if (rest.length) lines.push({ content: rest.join(" · "), size: SIZE.caption, weight: "normal" });
  for (const line of lines) line.width = textWidth(line.content, line.size, line.weight) + 4; // + the halo
  return { lines, w: Math.max(...lines.map((l) => l.width)), h: lines.reduce((sum, l) => sum + lineHeight(l.size), 0) };
}

// Where a block goes for a side of its node, as a box.
function blockBox(place, label, side) {
  const { x, y } = place;
  if (side === "below") return { x: x - label.w / 2, y: y + NODE_EXT + 2, w: label.w, h: label.h };
  if (side === "above") return { x: x - label.w / 2, y: y - NODE_EXT - 2 - label.h, w: label.w, h: label.h };
  if (side === "left") return { x: x - NODE_EXT - 6 - label.w, y: y - label.h / 2, w: label.w, h: label.h };
  return { x: x + NODE_EXT + 6, y: y - label.h / 2, w: label.w, h: label.h };
}

// The sides to try, best first: away from the ellipse's centre.
function sides(angle) {
  const sin = Math.sin(angle);
  const out = Math.cos(angle) < 0 ? "left" : "right";
  const other = out === "left" ? "right" : "left";
  if (sin < -0.35) return ["above", out, "below", other];
  if (sin > 0.35) return ["below", out, "above", other];
  return ["below", "above", out, other];
}

// ---- layout --------------------------------------------------------------------------------------------------

// Places on an ellipse of radii rx, ry around (0, 0): the first at the left, then clockwise.
function ring(count, rx, ry) {
  if (count === 1) return [{ x: 0, y: 0, angle: Math.PI / 2 }];
  return Array.from({ length: count }, (_, index) => {
    const angle = Math.PI + (2 * Math.PI * index) / count;
    return { x: rx * Math.cos(angle), y: ry * Math.sin(angle), angle };
  });
}

// Each node's label side, greedily, the one with the least cost: overlaps are forbidden, leaving the budget
// (the shown width) costs by how far, a less preferred side a little.
function placeLabels(places, labels, bounds) {
  const boxes = places.map((p) => nodeBox(p));
  const chosen = [];
  let cost = 0;
  places.forEach((place, index) => {
    let best = null;
    sides(place.angle).forEach((side, rank) => {
      const box = blockBox(place, labels[index], side);
      let c = rank * 3;
      // (Its own node's box touches it by construction.)
      boxes.forEach((other, k) => { if (k !== index && boxesOverlap(box, other, GAP)) c += HARD; });
      for (const other of chosen) if (boxesOverlap(box, other.box, GAP)) c += HARD;
      // Inside the ellipse is where the arrows run: a label there is crossed by them.
      const centre = { x: box.x + box.w / 2, y: box.y + box.h / 2 };
      if (places.length > 2 && Math.hypot(centre.x, centre.y) < Math.hypot(place.x, place.y)) c += 150;
      c += Math.max(0, bounds.left - box.x) + Math.max(0, box.x + box.w - bounds.right);
      c += Math.max(0, bounds.top - box.y) + Math.max(0, box.y + box.h - bounds.bottom);
      if (!best || c < best.cost) best = { side, box, cost: c };
    });
    chosen.push(best);
    cost += best.cost;
  });
  return { chosen, cost };
}

// The nodes' places and label sides: the largest ellipse the room allows (within the limits below; `grow` makes it
// taller), made taller (then wider) while anything overlaps.
function layoutNodes(labels, width, height, grow = 0) {
  const count = labels.length;
  const bounds = { left: -width / 2 + MARGIN, right: width / 2 - MARGIN, top: -height / 2, bottom: height / 2 };
  // Room above the top nodes and below the bottom ones: on average, the tallest label of either half.
  const upper = ring(count, 1, 1).map((p) => Math.sin(p.angle) < 0);
  const tallest = (Math.max(0, ...labels.filter((_, k) => upper[k]).map((l) => l.h))
                   + Math.max(0, ...labels.filter((_, k) => !upper[k]).map((l) => l.h))) / 2;
  const sideRoom = Math.max(NODE_EXT, labels[0].w / 2, count > 1 ? labels[Math.floor(count / 2)].w / 2 : 0);
  // As tall as the height allows, and not much wider than tall: on a flat ellipse the nodes at the top and at
  // the bottom are nearly in line, and the arrows between them would run through each other's nodes.
  // (A few nodes need less: they would only be far apart.)
  const fits = (height - 2 * (NODE_EXT + 2 + tallest + MARGIN)) / 2;
  let ry = Math.max(count <= 3 ? 70 : 90, Math.min(fits, 50 + 30 * count));
  let rx = Math.max(90, Math.min(width / 2 - sideRoom - MARGIN, 120 + 40 * count, count > 2 ? 1.9 * ry : Infinity));
  ry = Math.min(ry, count > 2 ? 0.8 * rx : ry) + 28 * grow; // (taller when asked to: see drawHears)
  rx = Math.min(rx + 12 * grow, Math.max(rx, width / 2 - sideRoom - MARGIN));
  let best = null;
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const places = ring(count, rx, ry);
    const { chosen, cost } = placeLabels(places, labels, bounds);
    const overlaps = places.some((a, i) => places.some((b, j) => j > i
      && boxesOverlap(nodeBox(a), nodeBox(b), 2 * GAP)));
    const total = cost + (overlaps ? HARD : 0);
    if (!best || total < best.total) best = { places, chosen, total };
    if (total < 100) break; // no overlap, no label inside the ellipse, little outside the room
    ry += 16;
    if (attempt % 2) rx += 14;
  }
  return best;
}

// ---- arrows --------------------------------------------------------------------------------------------------

// A point of a cubic curve.
function cubic(g, t) {
  const u = 1 - t;
  const a = u * u * u;
  const b = 3 * u * u * t;
  const c = 3 * u * t * t;
  const d = t * t * t;
  return { x: a * g.start.x + b * g.c1.x + c * g.c2.x + d * g.base.x,
           y: a * g.start.y + b * g.c1.y + c * g.c2.y + d * g.base.y };
}

// Points along a curve, a few units apart (dense enough that none of them skips a label's box).
function sample(g) {
  const length = Math.hypot(g.c1.x - g.start.x, g.c1.y - g.start.y) + Math.hypot(g.c2.x - g.c1.x, g.c2.y - g.c1.y)
    + Math.hypot(g.base.x - g.c2.x, g.base.y - g.c2.y);
  const count = Math.max(8, Math.ceil(length / 5));
  return Array.from({ length: count + 1 }, (_, k) => cubic(g, k / count));
}

// An arrow that leaves `from` at angle `leaves` and arrives at `to` from angle `arrives` (both as seen from the
// node's centre), its handles `reach` long: it starts at one outline and its head's tip touches the other.
function shaft(from, to, fromRole, toRole, leaves, arrives, reach) {
  const out = { x: Math.cos(leaves), y: Math.sin(leaves) };
  const into = { x: Math.cos(arrives), y: Math.sin(arrives) };
  const start = { x: from.x + out.x * (outline(fromRole, out) + 3), y: from.y + out.y * (outline(fromRole, out) + 3) };
  const tip = { x: to.x + into.x * (outline(toRole, into) + 4), y: to.y + into.y * (outline(toRole, into) + 4) };
  const base = { x: tip.x + into.x * 11, y: tip.y + into.y * 11 };
  const g = { start, tip, base, leaves, arrives, reach,
              c1: { x: start.x + out.x * reach[0], y: start.y + out.y * reach[0] },
              c2: { x: base.x + into.x * reach[1], y: base.y + into.y * reach[1] },
              head: [tip, { x: base.x + into.y * 6, y: base.y - into.x * 6 },
                     { x: base.x - into.y * 6, y: base.y + into.x * 6 }] };
  g.points = sample(g);
  return g;
}

// An arrow from place `from` to place `to` bent like a parabola whose control point is `offset` units to the
// left of from→to (the cubic form of that quadratic curve, so that its ends can later be moved apart).
function arrow(from, to, fromRole, toRole, offset) {
  const length = Math.hypot(to.x - from.x, to.y - from.y) || 1;
  const normal = { x: (to.y - from.y) / length, y: -(to.x - from.x) / length };
  const control = { x: (from.x + to.x) / 2 + normal.x * offset, y: (from.y + to.y) / 2 + normal.y * offset };
  const leaves = angleOf(unit(from, control));
  const arrives = angleOf(unit(to, control));
  const rough = shaft(from, to, fromRole, toRole, leaves, arrives, [0, 0]);
  const reach = [(2 / 3) * Math.hypot(control.x - rough.start.x, control.y - rough.start.y),
                 (2 / 3) * Math.hypot(control.x - rough.base.x, control.y - rough.base.y)];
  return shaft(from, to, fromRole, toRole, leaves, arrives, reach);
}

// The cost of an arrow among what is already drawn: crossing another node (or the music) is forbidden, crossing
// a label costs, its head on a label is forbidden; heads crowding at one node cost a little (spread() moves
// them apart afterwards, but the less it has to, the more the arrows keep their shape).
function arrowCost(geometry, from, to, world) {
  let cost = 0;
  for (const [index, place] of world.places.entries()) {
    if (index === from || index === to) continue;
    // Worse than anything else: an arrow through a node reads as passing through that person.
    if (geometry.points.some((p) => Math.hypot(p.x - place.x, p.y - place.y) < NODE_EXT + GAP)) cost += 5 * HARD;
  }
  if (world.music && geometry.points.some((p) => Math.hypot(p.x - world.music.x, p.y - world.music.y)
                                              < MUSIC_R + 3 * GAP)) cost += HARD;
  for (const box of world.labelBoxes) {
    if (geometry.points.some((p) => inBox(p, box, 2))) cost += 60;
    if (geometry.head.some((p) => inBox(p, box, 3))) cost += HARD;
  }
  for (const other of world.heads.get(to) ?? []) if (angleBetween(other, geometry.arrives) < 22 * DEG) cost += 40;
  for (const other of world.tails.get(to) ?? []) if (angleBetween(other, geometry.arrives) < 12 * DEG) cost += 20;
  if (from !== undefined) {
    for (const other of world.heads.get(from) ?? []) if (angleBetween(other, geometry.leaves) < 12 * DEG) cost += 20;
  }
  return cost;
}

function remember(world, geometry, from, to) {
  if (!world.heads.has(to)) world.heads.set(to, []);
  world.heads.get(to).push(geometry.arrives);
  if (from !== undefined) {
    if (!world.tails.has(from)) world.tails.set(from, []);
    world.tails.get(from).push(geometry.leaves);
  }
}

const copyEnds = (ends) => new Map([...ends].map(([k, v]) => [k, [...v]]));

// The offsets to try, as fractions of the distance: for a two-way talk pairs that keep the two arrows apart
// (one bent each way first), for a one-way arrow a slight bend first.
const PAIR_OFFSETS = [[0.2, -0.2], [0.14, -0.14], [0.28, -0.28], [0.36, -0.12], [-0.12, 0.36], [0.12, -0.36],
                      [-0.36, 0.12], [0.42, 0.14], [-0.14, -0.42], [0.14, 0.42], [-0.42, -0.14], [0.5, -0.5],
                      [0.6, 0.28], [-0.28, -0.6]];
const SINGLE_OFFSETS = [0.16, -0.16, 0, 0.3, -0.3, 0.45, -0.45, 0.6, -0.6];
// Long arrows bend as much as one of 420 units would: a bigger bulge would reach far out of the ellipse.
const capped = (fraction, length) => fraction * Math.min(length, 420);

// The arrows between participants, pair by pair (those in `first`, then the shortest first): each pair takes its
// cheapest offsets.
function routeVoices(edges, world, index, roles, first = new Set()) {
  const pairs = new Map();
  for (const edge of edges) {
    const a = index.get(edge.speaker);
    const b = index.get(edge.listener);
    if (a === undefined || b === undefined) continue;
    const key = a < b ? `${a} ${b}` : `${b} ${a}`;
    if (!pairs.has(key)) pairs.set(key, { low: Math.min(a, b), high: Math.max(a, b), edges: [] });
    pairs.get(key).edges.push(edge);
  }
  const distance = (pair) => Math.hypot(world.places[pair.high].x - world.places[pair.low].x,
                                        world.places[pair.high].y - world.places[pair.low].y);
  const routed = [];
  const order = (pair) => (first.has(`${pair.low} ${pair.high}`) ? -1e6 : 0) + distance(pair);
  for (const pair of [...pairs.values()].sort((p, q) => order(p) - order(q))) {
    const length = distance(pair);
    // Both directions in one frame (low → high): an arrow high → low bent left of its own way is bent right
    // in that frame, so its offset is negated.
    const geometryOf = (edge, fraction) => {
      const from = index.get(edge.speaker);
      const to = index.get(edge.listener);
      const sign = from === pair.low ? 1 : -1;
      return arrow(world.places[from], world.places[to], roles[from], roles[to], sign * capped(fraction, length));
    };
    const options = pair.edges.length === 2 ? PAIR_OFFSETS : SINGLE_OFFSETS.map((f) => [f]);
    let best = null;
    for (const [rank, fractions] of options.entries()) {
      if (best && best.cost <= rank * 2) break; // nothing later can be cheaper
      const trial = { ...world, heads: copyEnds(world.heads), tails: copyEnds(world.tails) };
      let cost = rank * 2;
      const geometries = pair.edges.map((edge, k) => {
        const geometry = geometryOf(edge, fractions[k]);
        const from = index.get(edge.speaker);
        const to = index.get(edge.listener);
        cost += arrowCost(geometry, from, to, trial);
        remember(trial, geometry, from, to);
        return geometry;
      });
      if (!best || cost < best.cost) best = { cost, geometries };
    }
    pair.edges.forEach((edge, k) => {
      const geometry = best.geometries[k];
      remember(world, geometry, index.get(edge.speaker), index.get(edge.listener));
      routed.push({ ...edge, geometry });
    });
  }
  return routed;
}

// Moves apart the ends of arrows at each node that would lie on each other: heads at least 22° apart (two
// heads 12 units wide, 28 to 39 units from the centre, touch at about 18°), a head and a line 13°, two lines 8°.
// Each arrow is then drawn again from its moved ends, with the same handles (so the same bulge).
function spread(arrows, placeOf, roleOf) {
  const ends = new Map();
  const add = (key, end) => {
    if (!ends.has(key)) ends.set(key, []);
    ends.get(key).push(end);
  };
  for (const a of arrows) {
    a.ends = { leaves: { angle: a.geometry.leaves, head: false }, arrives: { angle: a.geometry.arrives, head: true } };
    add(a.fromKey, a.ends.leaves);
    add(a.toKey, a.ends.arrives);
  }
  const need = (a, b) => (a.head && b.head ? 22 : a.head || b.head ? 13 : 8) * DEG;
  const wrap = (angle) => Math.atan2(Math.sin(angle), Math.cos(angle));
  for (const list of ends.values()) {
    if (list.length < 2) continue;
    for (let round = 0; round < 80; round += 1) {
      list.sort((a, b) => wrap(a.angle) - wrap(b.angle));
      let moved = false;
      for (let i = 0; i < list.length; i += 1) {
        const a = list[i];
        const b = list[(i + 1) % list.length];
        let gap = wrap(b.angle) - wrap(a.angle);
        if (i === list.length - 1) gap += 2 * Math.PI;
        const wanted = need(a, b);
        if (gap < wanted - 1e-3) {
          const push = (wanted - gap) / 2 + 1e-3;
          a.angle -= push;
          b.angle += push;
          moved = true;
        }
      }
      if (!moved) break;
    }
  }
  for (const a of arrows) {
    const g = a.geometry;
    a.geometry = shaft(placeOf(a.fromKey), placeOf(a.toKey), roleOf(a.fromKey), roleOf(a.toKey),
                       a.ends.leaves.angle, a.ends.arrives.angle, g.reach);
  }
}

// Whether an arrow runs through a node that is not one of its ends, or has its head on a label.
const astray = (g, arrow, places, labelBoxes) => places.some((place, k) => k !== arrow.fromKey && k !== arrow.toKey
  && g.points.some((p) => Math.hypot(p.x - place.x, p.y - place.y) < SHAPE_R))
  || labelBoxes.some((box) => g.head.some((p) => inBox(p, box, 2)));

// An arrow that still runs through a node (or puts its head on a label) once the ends are spread is bent further,
// to one side or the other, until it clears every node, keeps its head clear of the other ends at its node, and
// stays apart from the arrow back (a two-way talk).
// Each end turned by up to 40° (the least turned first), the handles as they are or longer.
const TURNS = (() => {
  const steps = [0, 8, -8, 16, -16, 24, -24, 32, -32, 40, -40];
  const all = steps.flatMap((out) => steps.flatMap((into) => [1, 1.3].map((stretch) => [out, into, stretch])));
  return all.filter(([out, into]) => out || into)
    .sort((a, b) => Math.abs(a[0]) + Math.abs(a[1]) + (a[2] - 1) * 20 - (Math.abs(b[0]) + Math.abs(b[1]) + (b[2] - 1) * 20));
})();

function repair(arrows, places, labelBoxes, placeOf, roleOf) {
  const crosses = (g, arrow) => astray(g, arrow, places, labelBoxes);
  const endsAt = (key, except) => arrows.filter((a) => a !== except).flatMap((a) => [
    ...(a.toKey === key ? [{ angle: a.geometry.arrives, head: true }] : []),
    ...(a.fromKey === key ? [{ angle: a.geometry.leaves, head: false }] : [])]);
  const clear = (angle, head, ends) => ends.every((end) => angleBetween(angle, end.angle)
    >= (head && end.head ? 21 : head || end.head ? 12 : 7) * DEG);
  const middle = (g) => cubic(g, 0.5);
  for (const arrow of arrows) {
    if (!crosses(arrow.geometry, arrow)) continue;
    const back = arrows.find((a) => a.fromKey === arrow.toKey && a.toKey === arrow.fromKey);
    const g = arrow.geometry;
    for (const [out, into, stretch] of TURNS) {
      const candidate = shaft(placeOf(arrow.fromKey), placeOf(arrow.toKey), roleOf(arrow.fromKey), roleOf(arrow.toKey),
                              g.leaves + out * DEG, g.arrives + into * DEG, g.reach.map((r) => r * stretch));
      if (crosses(candidate, arrow)) continue;
      if (!clear(candidate.arrives, true, endsAt(arrow.toKey, arrow))) continue;
      if (!clear(candidate.leaves, false, endsAt(arrow.fromKey, arrow))) continue;
      if (back) {
        const [p, q] = [middle(candidate), middle(back.geometry)];
        if (Math.hypot(p.x - q.x, p.y - q.y) < 16) continue;
      }
      arrow.geometry = candidate;
      break;
    }
  }
}

// ---- music ---------------------------------------------------------------------------------------------------

const MUSIC_CAPTION = { content: "music", size: SIZE.caption, weight: "normal" };

function musicBoxes(at) {
  const w = textWidth(MUSIC_CAPTION.content, MUSIC_CAPTION.size) + 4;
  return [nodeBox(at, MUSIC_R + 2),
          { x: at.x - w / 2, y: at.y + MUSIC_R + 2, w, h: lineHeight(MUSIC_CAPTION.size) }];
}

// Where the music node goes: beside its listeners, outside the ellipse, where no arrow between participants
// passes and its own arrows cross no node; the centre only when nothing better is free (the wait music before a
// conference starts, heard by everyone and nobody else).
function placeMusic(listeners, world, voices, roles, extent) {
  const candidates = [];
  const outward = (place) => (world.places.length === 1 ? { x: -1, y: 0 }
    : unit({ x: 0, y: 0 }, { x: place.x / (extent.rx ** 2), y: place.y / (extent.ry ** 2) }));
  const around = (origin, direction, penalty) => {
    for (const turn of [0, -35, 35, -70, 70, -110, 110, 180]) {
      const a = angleOf(direction) + turn * DEG;
      for (const distance of [80, 100, 125, 155]) {
        candidates.push({ x: origin.x + Math.cos(a) * distance, y: origin.y + Math.sin(a) * distance,
                          penalty: penalty + Math.abs(turn) * 0.4 + distance * 0.3 });
      }
    }
  };
  for (const listener of listeners) around(world.places[listener], outward(world.places[listener]), 0);
  if (listeners.length > 1) {
    const mean = { x: listeners.reduce((s, l) => s + world.places[l].x, 0) / listeners.length,
                   y: listeners.reduce((s, l) => s + world.places[l].y, 0) / listeners.length };
    const direction = Math.hypot(mean.x, mean.y) > 1 ? unit({ x: 0, y: 0 }, mean) : { x: 0, y: -1 };
    for (const distance of [0.6, 1, 1.3, 1.6]) {
      for (const sign of [1, -1]) {
        candidates.push({ x: direction.x * sign * distance * extent.rx, y: direction.y * sign * distance * extent.ry,
                          penalty: 40 + (sign < 0 ? 30 : 0) });
      }
    }
  }
  candidates.push({ x: 0, y: 0, penalty: 300 });
  let best = null;
  for (const candidate of candidates) {
    const boxes = musicBoxes(candidate);
    let cost = candidate.penalty;
    for (const place of world.places) if (boxes.some((b) => boxesOverlap(b, nodeBox(place), GAP))) cost += HARD;
    for (const box of world.labelBoxes) if (boxes.some((b) => boxesOverlap(b, box, GAP))) cost += HARD;
    for (const voice of voices) {
      if (voice.geometry.points.some((p) => Math.hypot(p.x - candidate.x, p.y - candidate.y) < MUSIC_R + 3 * GAP
                                      || inBox(p, boxes[1], 2))) cost += HARD;
    }
    const trial = { ...world, music: null, heads: copyEnds(world.heads), tails: copyEnds(world.tails) };
    const geometries = listeners.map((listener) => {
      const geometry = arrow(candidate, world.places[listener], "music", roles[listener], 0);
      cost += arrowCost(geometry, undefined, listener, trial) + 0.15 * Math.hypot(geometry.tip.x - candidate.x,
                                                                         geometry.tip.y - candidate.y);
      if (geometry.points.some((p) => inBox(p, boxes[1], 0))) cost += 60;
      remember(trial, geometry, undefined, listener);
      return geometry;
    });
    // Leaving the shown width costs by how far.
    cost += Math.max(0, extent.left - (candidate.x - MUSIC_R)) + Math.max(0, candidate.x + MUSIC_R - extent.right);
    if (!best || cost < best.cost) best = { cost, at: { x: candidate.x, y: candidate.y }, geometries };
  }
  return best;
}

// ---- the whisper's label -------------------------------------------------------------------------------------

// Beside its arrow (never on it, never under a node or another label), near the middle of the curve.
function placeEdgeLabel(geometry, content, world, taken) {
  const w = textWidth(content, SIZE.edge, "600") + 6;
  const h = lineHeight(SIZE.edge);
  let best = null;
  [0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74].forEach((t, rank) => {
    const at = cubic(geometry, t);
    const next = cubic(geometry, Math.min(1, t + 0.01));
    const along = unit(at, next);
    for (const sign of [1, -1]) {
      const normal = { x: -along.y * sign, y: along.x * sign };
      const reach = Math.abs(normal.x) * (w / 2) + Math.abs(normal.y) * (h / 2) + 3;
      const centre = { x: at.x + normal.x * reach, y: at.y + normal.y * reach };
      const box = { x: centre.x - w / 2, y: centre.y - h / 2, w, h };
      let cost = rank * 4 + (sign < 0 ? 1 : 0);
      for (const place of world.places) if (boxesOverlap(box, nodeBox(place), GAP)) cost += HARD;
      if (world.music && musicBoxes(world.music).some((b) => boxesOverlap(box, b, GAP))) cost += HARD;
      for (const other of [...world.labelBoxes, ...taken]) if (boxesOverlap(box, other, GAP)) cost += HARD;
      for (const other of world.arrows) {
        if (other.head.some((p) => inBox(p, box, 2))) cost += HARD;
        if (other !== geometry && other.points.some((p) => inBox(p, box, 0))) cost += 30;
      }
      if (geometry.points.some((p) => inBox(p, box, 0))) cost += 30;
      if (!best || cost < best.cost) best = { cost, box };
    }
  });
  return best.box;
}

// ---- drawing -------------------------------------------------------------------------------------------------

function shape(role, x, y, stroke, held) {
  const style = { fill: COLOUR.node, stroke, "stroke-width": "3px" };
  if (held) style["stroke-dasharray"] = "6 4";
  const r = NODE_R;
  const attributes = { class: "node-shape" };
  if (role === "agent") {
    return el("rect", { ...attributes, x: round(x - r * 0.9), y: round(y - r * 0.9), width: round(r * 1.8),
                        height: round(r * 1.8), rx: 8 }, style);
  }
  const polygon = (points) => el("polygon", { ...attributes,
                                              points: points.map((p) => p.map(round).join(",")).join(" ") }, style);
  if (role === "supervisor") {
    return polygon([[x, y - r * 1.15], [x + r * 1.15, y], [x, y + r * 1.15], [x - r * 1.15, y]]);
  }
  if (role === "external") {
    return polygon([0, 1, 2, 3, 4, 5].map((k) => {
      const a = Math.PI / 6 + (k * Math.PI) / 3;
      return [x + r * Math.cos(a), y + r * Math.sin(a)];
    }));
  }
  return el("circle", { ...attributes, cx: round(x), cy: round(y), r }, style);
}

function labelGroup(label, box, side) {
  const group = el("g", { class: "node-label" });
  const anchor = side === "left" ? "end" : side === "right" ? "start" : "middle";
  const x = anchor === "end" ? box.x + box.w - 2 : anchor === "start" ? box.x + 2 : box.x + box.w / 2;
  let top = box.y;
  for (const line of label.lines) {
    group.append(text(x, baseline(top, line.size), line.content, { size: line.size, weight: line.weight, anchor }));
    top += lineHeight(line.size);
  }
  return group;
}

function drawNode(participant, place, label, chosen) {
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
  group.append(text(x, y + 5.5, ROLE_LETTER[role] ?? "?", { size: SIZE.letter, weight: "bold", fill: COLOUR[role],
                                                            cls: "node-letter" }));
  group.append(labelGroup(label, chosen.box, chosen.side));
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

// Muted: a struck-through badge (a circle with a slash reads as "off" at this size).
function mutedMark(x, y) {
  const mark = el("g", { class: "mark", "data-mark": "muted" });
  mark.append(el("circle", { cx: round(x), cy: round(y), r: 9 }, { fill: COLOUR.muted, stroke: COLOUR.bg,
                                                                    "stroke-width": "2px" }),
              el("line", { x1: round(x - 5), y1: round(y + 5), x2: round(x + 5), y2: round(y - 5) },
                 { stroke: COLOUR.bg, "stroke-width": "2.5px", "stroke-linecap": "round" }));
  return mark;
}

function drawMusic(at) {
  const { x, y } = at;
  const group = el("g", { "data-node": "music", "data-role": "music" });
  const title = el("title");
  title.textContent = "hold or wait music";
  const box = musicBoxes(at)[1];
  const label = el("g", { class: "node-label" });
  label.append(text(x, baseline(box.y, MUSIC_CAPTION.size), MUSIC_CAPTION.content, { size: MUSIC_CAPTION.size }));
  group.append(title,
               el("circle", { class: "node-shape", cx: round(x), cy: round(y), r: MUSIC_R },
                  { fill: COLOUR.node, stroke: COLOUR.music, "stroke-width": "3px" }),
               text(x, y + 7.5, "♪", { size: SIZE.music, weight: "bold", fill: COLOUR.music, cls: "node-letter" }),
               label);
  return group;
}

function drawEdge(edge, labelBox) {
  const { listener, speaker, kind, geometry } = edge;
  const colour = COLOUR[kind];
  const group = el("g", { class: "edge", "data-listener": listener, "data-speaker": speaker, "data-kind": kind });
  const title = el("title");
  title.textContent = kind === "whisper" ? `${listener} hears ${speaker} (whisper)` : `${listener} hears ${speaker}`;
  const line = { fill: "none", stroke: colour, "stroke-width": kind === "whisper" ? "3px" : "2.5px" };
  if (kind === "whisper") line["stroke-dasharray"] = "8 5";
  if (kind === "music") {
    line["stroke-dasharray"] = "2 4";
    line["stroke-linecap"] = "round";
  }
  const { start, c1, c2, base, head } = geometry;
  const d = `M${round(start.x)},${round(start.y)} C${round(c1.x)},${round(c1.y)} ${round(c2.x)},${round(c2.y)} ${
    round(base.x)},${round(base.y)}`;
  group.append(title, el("path", { d }, line),
               el("polygon", { class: "head", points: head.map((p) => `${round(p.x)},${round(p.y)}`).join(" ") },
                  { fill: colour, stroke: colour, "stroke-width": "1px", "stroke-linejoin": "round" }));
  if (labelBox) {
    group.append(text(labelBox.x + labelBox.w / 2, baseline(labelBox.y, SIZE.edge), "whisper",
                      { size: SIZE.edge, weight: "600", fill: colour, cls: "edge-label" }));
  }
  return group;
}

// What the three kinds of arrow look like, in rows under the drawing (as many per row as fit).
function legend(left, right, top) {
  const group = el("g", { class: "legend", "aria-hidden": "true" });
  const kinds = [["voice", "hears", null], ["whisper", "coach's whisper", "8 5"], ["music", "hears music", "2 4"]];
  const h = lineHeight(SIZE.legend);
  let x = left;
  let y = top;
  for (const [kind, label, dash] of kinds) {
    const w = 42 + textWidth(label, SIZE.legend) + 4;
    if (x > left && x + w > right) {
      x = left;
      y += h + 4;
    }
    const middle = y + h / 2;
    const style = { stroke: COLOUR[kind], "stroke-width": "2.5px" };
    if (dash) style["stroke-dasharray"] = dash;
    group.append(el("line", { x1: round(x), y1: round(middle), x2: round(x + 26), y2: round(middle) }, style),
                 el("polygon", { points: `${round(x + 34)},${round(middle)} ${round(x + 25)},${round(middle - 5)} ${
                   round(x + 25)},${round(middle + 5)}` }, { fill: COLOUR[kind] }),
                 text(x + 40, baseline(y, SIZE.legend), label, { size: SIZE.legend, anchor: "start" }));
    x += w + 18;
  }
  return { group, bottom: y + h };
}

function listItem(listener, heard, music, whispers) {
  const item = document.createElement("li");
  item.dataset.listener = listener;
  const names = heard.map((speaker) => (whispers.has(`${listener}\n${speaker}`) ? `${speaker} (whisper)` : speaker));
  if (music) names.push("music");
  item.textContent = `${listener} hears ${names.length ? names.join(", ") : "nobody"}`;
  return item;
}

// The room the drawing has: the width it is shown at, and a height that leaves a laptop's screen room for the rest
// of the page (and that its style allows: max-height).
function room(svg) {
  const width = svg.getBoundingClientRect?.().width ?? 0;
  const limit = getComputedStyle(svg).maxHeight; // "none", or a length resolved to px ("448px")
  const maxHeight = limit.endsWith("px") ? Number.parseFloat(limit) : NaN;
  const shown = width > 0 ? width : DEFAULT_WIDTH;
  const height = Number.isFinite(maxHeight) && maxHeight > 0 ? maxHeight : Infinity;
  const screen = window.innerHeight > 0 ? window.innerHeight : 800;
  return { width: Math.min(Math.max(shown, 420), 1200),
           height: Math.min(height, Math.max(300, Math.min(0.7 * Math.max(shown, 420), 0.58 * screen, 520))) };
}

// Drawn again at the new width when the drawing's width changes (in the next frame: never inside the
// observer's callback, which would resize what it observes).
const drawn = new WeakMap(); // svg -> {list, participants, audibility, width}
function watch(svg) {
  if (drawn.has(svg) || typeof ResizeObserver !== "function") return;
  let frame = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      const last = drawn.get(svg);
      const width = svg.getBoundingClientRect().width;
      if (!last || width <= 0 || Math.abs(width - last.width) < 8) return;
      drawHears(svg, last.list, last.participants, last.audibility);
    });
  }).observe(svg);
}

// The arrows of a layout: routed, the music placed and the arrows' ends moved apart; when that made an arrow cross
// a node, again with the pairs of such arrows routed first (the best of a few tries), then bent clear if it can.
function routeAll({ places, chosen }, edges, index, roles, listeners, ordered, space) {
  const extent = { rx: Math.max(1, ...places.map((p) => Math.abs(p.x))),
                   ry: Math.max(1, ...places.map((p) => Math.abs(p.y))),
                   left: -space.width / 2 + MARGIN, right: space.width / 2 - MARGIN };
  const labelBoxes = chosen.map((c) => c.box);
  const crossings = (routed) => routed.filter((edge) => astray(edge.geometry, edge, places, labelBoxes));
  let best = null;
  let first = new Set();
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const world = { places, labelBoxes: chosen.map((c) => c.box), heads: new Map(), tails: new Map(), music: null,
                    arrows: [] };
    const voices = routeVoices(edges, world, index, roles, first);
    const musical = listeners.length ? placeMusic(listeners, world, voices, roles, extent) : null;
    const routed = voices.map((edge) => ({ ...edge, fromKey: index.get(edge.speaker),
                                           toKey: index.get(edge.listener) }));
    if (musical) {
      world.music = musical.at;
      listeners.forEach((listener, k) => routed.push({ listener: ordered[listener].label, speaker: "music",
                                                       kind: "music", geometry: musical.geometries[k],
                                                       fromKey: "music", toKey: listener }));
    }
    const placeOf = (key) => (key === "music" ? musical.at : places[key]);
    const roleOf = (key) => (key === "music" ? "music" : roles[key]);
    spread(routed, placeOf, roleOf);
    let crossing = crossings(routed);
    if (crossing.length) {
      repair(routed, places, labelBoxes, placeOf, roleOf);
      crossing = crossings(routed);
    }
    if (!best || crossing.length < best.crossing) best = { world, routed, musical, crossing: crossing.length };
    if (!crossing.length) break;
    first = new Set([...first, ...crossing.filter((e) => e.fromKey !== "music").map((e) => {
      const [a, b] = [e.fromKey, e.toKey].sort((x, y) => x - y);
      return `${a} ${b}`;
    })]);
  }
  return best;
}

// participants: [{label, role, status, mode, coach, hold, muted}]; audibility: {hears: {listener: [speaker]},
// music: [listener]}. Replaces the content of `svg` and `list`.
export function drawHears(svg, list, participants, audibility) {
  watch(svg);
  const space = room(svg);
  drawn.set(svg, { list, participants, audibility, width: svg.getBoundingClientRect?.().width ?? 0 });
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
  const index = new Map(ordered.map((p, k) => [p.label, k]));

  const whispers = new Set();
  const edges = [];
  for (const [listener, speakers] of Object.entries(hears)) {
    for (const speaker of speakers) {
      const source = byLabel.get(speaker);
      const coaching = source && source.role === "supervisor" && (source.mode === "coach" || source.coaching);
      const kind = coaching && source.coach === listener ? "whisper" : "voice";
      if (kind === "whisper") whispers.add(`${listener}\n${speaker}`);
      edges.push({ listener, speaker, kind });
    }
  }

  svg.replaceChildren();
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  if (!svg.hasAttribute("role")) svg.setAttribute("role", "img");
  svg.setAttribute("font-family", FONT);
  svg.style.setProperty("font-size", `${SIZE.caption}px`);
  const legendHeight = lineHeight(SIZE.legend) + 14;

  if (!ordered.length) {
    const w = space.width;
    svg.setAttribute("viewBox", `${round(-w / 2)} -50 ${round(w)} ${100 + legendHeight}`);
    svg.append(text(0, 5, "nobody is in the conference", { size: SIZE.name }));
    svg.append(legend(-w / 2 + MARGIN, w / 2 - MARGIN, 50).group);
  } else {
    const labels = ordered.map(block);
    const roles = ordered.map((p) => p.role ?? "external");
    const listeners = music.map((label) => index.get(label)).filter((k) => k !== undefined);
    const budget = (Number.isFinite(space.height) ? space.height : 0.62 * space.width) - legendHeight;
    // Laid out and routed; while an arrow still runs through a node, again on a taller (and wider) ellipse.
    let composed = null;
    for (let grow = 0; grow < 4; grow += 1) {
      const layout = layoutNodes(labels, space.width, budget + 56 * grow, grow);
      const route = routeAll(layout, edges, index, roles, listeners, ordered, space);
      if (!composed || route.crossing < composed.route.crossing) composed = { layout, route };
      if (!route.crossing) break;
    }
    const { places, chosen } = composed.layout;
    const { world, routed, musical } = composed.route;
    world.arrows = routed.map((edge) => edge.geometry);
    const taken = [];
    const labelled = routed.map((edge) => {
      if (edge.kind !== "whisper") return null;
      const box = placeEdgeLabel(edge.geometry, "whisper", world, taken);
      taken.push(box);
      return box;
    });

    const edgeLayer = el("g", { class: "edges" });
    const nodeLayer = el("g", { class: "nodes" });
    const labelLayer = el("g", { class: "edge-labels" });
    routed.forEach((edge, k) => {
      const group = drawEdge(edge, labelled[k]);
      // Whisper arrows (and their labels) above the voice arrows.
      if (edge.kind === "whisper") labelLayer.append(group);
      else edgeLayer.append(group);
    });
    ordered.forEach((participant, k) => nodeLayer.append(drawNode(participant, places[k], labels[k], chosen[k])));
    if (musical) nodeLayer.append(drawMusic(musical.at));

    // The viewBox: everything drawn, plus a margin, at least as wide as the drawing is shown (so one unit stays
    // one pixel), the legend under it.
    const boxes = [...places.map((p) => nodeBox(p)), ...chosen.map((c) => c.box), ...taken,
                   ...(musical ? musicBoxes(musical.at) : []),
                   ...routed.flatMap((edge) => [...edge.geometry.points, ...edge.geometry.head]
                     .map((p) => ({ x: p.x - 2, y: p.y - 2, w: 4, h: 4 })))];
    const left = Math.min(...boxes.map((b) => b.x)) - MARGIN;
    const right = Math.max(...boxes.map((b) => b.x + b.w)) + MARGIN;
    const top = Math.min(...boxes.map((b) => b.y)) - MARGIN;
    const bottom = Math.max(...boxes.map((b) => b.y + b.h));
    const width = Math.max(right - left, space.width);
    const x0 = (left + right) / 2 - width / 2;
    const key = legend(x0 + MARGIN, x0 + width - MARGIN, bottom + 10);
    svg.setAttribute("viewBox", `${round(x0)} ${round(top)} ${round(width)} ${round(key.bottom + MARGIN - top)}`);
    svg.append(edgeLayer, labelLayer, nodeLayer, key.group);
  }

  list.replaceChildren();
  const listeners = [...Object.keys(hears)];
  for (const label of music) if (!listeners.includes(label)) listeners.push(label);
  const position = (label) => (index.has(label) ? index.get(label) : ordered.length);
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
