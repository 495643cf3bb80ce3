"""The who-hears-whom drawing and the swim-lane chart stay readable, measured in a real browser (Debian's chromium).

The console's own `drawing.js`, `swimlane.js` and `console.css` (read from the package, served to a blank page
on a made-up origin by playwright's router, no server) draw conferences of 1 to 7 participants whose
audibility is the domain's own (`confctl.domain.audibility`): customers, agents, externals, supervisors in
monitor, coach and barge, someone on hold, someone muted, the wait music before the start. At the widths the
console shows the drawing (about 560 and 800 px) the SVG's own boxes (getBBox) show no two nodes or labels
overlapping, no arrowhead on another node, label or arrowhead, no arrow through a node that is not its end,
no arrow between participants through the music node, every text at least 11 px on screen, and the two arrows
of a two-way talk apart. A one-second hold in a ten-minute call is still a bar one can see and click.
Screenshots of each case go to test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from confctl.domain.audibility import audibility
from confctl.domain.model import Conference, Mode, Participant, Role
from confctl.service.projection import participant_document
from tests.browser.support import watch

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "src" / "confctl" / "entry" / "static" / "console"
ARTIFACTS = REPO / "test-artifacts"
ORIGIN = "http://console.test"
JOINED = "2026-01-05T10:00:00Z"
WIDTHS = [560, 800]  # the drawing's width on the console's narrowest and widest layouts
PANEL_PADDING = 26  # .panel's padding (0.8rem each side): the panel is this much wider than the drawing

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>drawing</title>
<link rel="stylesheet" href="/console/console.css"></head>
<body><main><section class="panel" id="box"><h3 id="hears-title">Who hears whom</h3>
<svg id="hears" role="img" aria-labelledby="hears-title"></svg><ul id="hears-list"></ul></section>
<div id="swimlane"></div></main>
<script type="module">
import { drawHears } from "/console/drawing.js";
import { drawSwimlane } from "/console/swimlane.js";
window.drawHears = drawHears;
window.drawSwimlane = drawSwimlane;
window.loaded = true;
</script></body></html>"""


def leg(label: str, role: Role, *, hold: bool = False, muted: bool = False, coach: str | None = None,
        mode: Mode = "normal") -> Participant:
    """A joined participant; a coach whispers to the leg labelled `coach`, a monitor is muted (as Twilio's is)."""
    return Participant(label=label, role=role, call_sid=f"CA{label}", joined_at=JOINED, hold=hold,
                       muted=muted or mode == "monitor", coaching=coach is not None,
                       call_sid_to_coach=f"CA{coach}" if coach else None,
                       requested_mode="coach" if coach else mode,
                       requested_coach=coach)


CASES: dict[str, tuple[tuple[Participant, ...], bool]] = {
    # name: (participants, started)
    "1-alone-before-the-start": ((leg("customer", "customer"),), False),
    "2-talking": ((leg("customer", "customer"), leg("alice", "agent")), True),
    "2-waiting-before-the-start": ((leg("customer", "customer"), leg("alice", "agent")), False),
    "3-consult-customer-on-hold": ((leg("customer", "customer", hold=True), leg("alice", "agent"),
                                    leg("bob", "agent")), True),
    "3-coach": ((leg("customer", "customer"), leg("alice", "agent"), leg("sue", "supervisor", coach="alice")),
                True),
    "4-coach-and-monitor": ((leg("customer", "customer"), leg("alice", "agent"),
                             leg("sue", "supervisor", coach="alice"), leg("tom", "supervisor", mode="monitor")),
                            True),
    "5-hold-muted-barge": ((leg("customer", "customer", muted=True), leg("alice", "agent"),
                            leg("bob", "agent", hold=True), leg("interpreter", "external"),
                            leg("ann", "supervisor", mode="barge")), True),
    "5-everyone-talking": ((leg("customer", "customer"), leg("agent-alexandra", "agent"), leg("bob", "agent"),
                            leg("+15551234567", "external"), leg("ann", "supervisor", mode="barge")), True),
    "6-waiting-before-the-start": ((leg("customer", "customer"), leg("alice", "agent"), leg("bob", "agent"),
                                    leg("carol", "agent"), leg("interpreter", "external"),
                                    leg("sue", "supervisor", mode="monitor")), False),
    "7-everything": ((leg("customer", "customer", hold=True), leg("alice", "agent"), leg("bob", "agent"),
                      leg("interpreter", "external", muted=True), leg("sue", "supervisor", coach="alice"),
                      leg("tom", "supervisor", mode="monitor"), leg("ann", "supervisor", mode="barge")), True),
    "7-coach-and-barge-talking": ((leg("customer", "customer"), leg("alice", "agent"), leg("bob", "agent"),
                                   leg("interpreter", "external"), leg("sue", "supervisor", coach="alice"),
                                   leg("tom", "supervisor", mode="monitor"),
                                   leg("ann", "supervisor", mode="barge", muted=True)), True),
}


def case(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The participants (as the API documents them) and the audibility (the domain's) of a case."""
    legs, started = CASES[name]
    conference = Conference(id="room-1", version=1, participants=legs, started_at=JOINED if started else None)
    heard = audibility(conference)
    return ([participant_document(conference, p) for p in legs], {"hears": heard.hears, "music": heard.music})


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A blank page on a made-up origin with the console's style sheet and its two drawing modules loaded;
    errors and warnings the page logs fail the test."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)

    async def serve(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/":
            await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=PAGE)
        elif path.startswith("/console/") and (STATIC / path.removeprefix("/console/")).is_file():
            file = STATIC / path.removeprefix("/console/")
            kind = "text/css" if file.suffix == ".css" else "text/javascript"
            await route.fulfill(status=200, content_type=f"{kind}; charset=utf-8", body=file.read_text("utf-8"))
        else:
            await route.fulfill(status=404, body="")

    await page.route(f"{ORIGIN}/**", serve)
    await page.goto(f"{ORIGIN}/")
    await page.wait_for_function("window.loaded === true", timeout=5000)
    try:
        yield page
    finally:
        await page.close()
    assert problems == [], problems


DRAW_JS = """([width, participants, audibility]) => {
  document.querySelector('#box').style.width = `${width}px`;
  window.drawHears(document.querySelector('#hears'), document.querySelector('#hears-list'), participants,
                   audibility);
}"""

# Runs in the page: what would make the drawing hard to read, from the SVG's own geometry (user units, which the
# drawing has no transform between). Node shapes, label blocks (a node's name and captions), edge labels,
# arrowheads (as triangles, not their boxes), arrows (sampled every 2 units), text sizes on screen.
CHECK_JS = """() => {
  const svg = document.querySelector('#hears');
  const problems = [];
  const box = (e) => { const b = e.getBBox(); return { x: b.x, y: b.y, w: b.width, h: b.height }; };
  const overlap = (a, b) => Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x) > 0.5
    && Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y) > 0.5;
  const corners = (b) => [[b.x, b.y], [b.x + b.w, b.y], [b.x + b.w, b.y + b.h], [b.x, b.y + b.h]];
  // Two convex polygons intersect unless some edge's normal separates them (by more than half a unit).
  const apart = (p, q) => {
    for (const poly of [p, q]) {
      for (let i = 0; i < poly.length; i += 1) {
        const [x1, y1] = poly[i]; const [x2, y2] = poly[(i + 1) % poly.length];
        const n = [y2 - y1, x1 - x2]; const len = Math.hypot(...n) || 1;
        const project = (pts) => pts.map(([x, y]) => (x * n[0] + y * n[1]) / len);
        const a = project(p); const b = project(q);
        if (Math.max(...a) < Math.min(...b) + 0.5 || Math.max(...b) < Math.min(...a) + 0.5) return true;
      }
    }
    return false;
  };
  const nodes = [...svg.querySelectorAll('g[data-node]')].map(g => ({
    who: g.dataset.node, element: g.querySelector('.node-shape'), shape: box(g.querySelector('.node-shape')),
    label: box(g.querySelector('.node-label')) }));
  const edges = [...svg.querySelectorAll('g.edge')].map(g => ({
    who: `${g.dataset.speaker}->${g.dataset.listener}`, speaker: g.dataset.speaker, listener: g.dataset.listener,
    kind: g.dataset.kind, path: g.querySelector('path'),
    head: [...g.querySelector('polygon').points].map(p => [p.x, p.y]),
    label: g.querySelector('text') ? box(g.querySelector('text')) : null }));
  nodes.forEach((a, i) => nodes.forEach((b, j) => {
    if (j <= i) return;
    if (overlap(a.shape, b.shape)) problems.push(`node ${a.who} on node ${b.who}`);
    if (overlap(a.label, b.label)) problems.push(`label of ${a.who} on label of ${b.who}`);
  }));
  for (const a of nodes) for (const b of nodes) {
    if (overlap(a.label, b.shape)) problems.push(`label of ${a.who} on node ${b.who}`);
  }
  edges.forEach((e, i) => {
    if (e.label) {
      for (const n of nodes) {
        if (overlap(e.label, n.shape)) problems.push(`label of ${e.who} on node ${n.who}`);
        if (overlap(e.label, n.label)) problems.push(`label of ${e.who} on label of ${n.who}`);
      }
      edges.forEach((f, j) => {
        if (j !== i && f.label && overlap(e.label, f.label)) problems.push(`label of ${e.who} on label of ${f.who}`);
        if (!apart(corners(e.label), f.head)) problems.push(`head of ${f.who} on label of ${e.who}`);
      });
    }
    for (const n of nodes) {
      if (n.who !== e.listener && !apart(corners(n.shape), e.head)) problems.push(`head of ${e.who} on node ${n.who}`);
      if (!apart(corners(n.label), e.head)) problems.push(`head of ${e.who} on label of ${n.who}`);
    }
    edges.forEach((f, j) => {
      if (j > i && !apart(e.head, f.head)) problems.push(`head of ${e.who} on head of ${f.who}`);
    });
    // The arrow's line passes through no node but its two ends (and no arrow between participants through music):
    // no point of it inside a shape or on its outline.
    const length = e.path.getTotalLength();
    for (let at = 0; at <= length; at += 2) {
      const p = e.path.getPointAtLength(at);
      for (const n of nodes) {
        if (n.who === e.speaker || n.who === e.listener) continue;
        const inside = n.element.isPointInFill(p) || n.element.isPointInStroke(p);
        if (inside && !problems.includes(`arrow ${e.who} through node ${n.who}`)) {
          problems.push(`arrow ${e.who} through node ${n.who}`);
        }
      }
    }
  });
  // Two-way talk: both arrows there and apart (their middles at least 12 units from each other).
  for (const e of edges) {
    const back = edges.find(f => f.speaker === e.listener && f.listener === e.speaker);
    if (!back || e.speaker > e.listener) continue;
    const a = e.path.getPointAtLength(e.path.getTotalLength() / 2);
    const b = back.path.getPointAtLength(back.path.getTotalLength() / 2);
    if (Math.hypot(a.x - b.x, a.y - b.y) < 12) problems.push(`the two arrows of ${e.who} lie on each other`);
  }
  // Readable on screen: every text at least 11 px; and nothing drawn outside the viewBox.
  const scale = svg.getScreenCTM().a;
  for (const t of svg.querySelectorAll('text')) {
    const px = parseFloat(t.getAttribute('font-size')) * scale;
    if (px < 11) problems.push(`"${t.textContent}" is ${px.toFixed(1)} px`);
  }
  const view = svg.viewBox.baseVal;
  const all = box(svg);
  if (all.x < view.x - 0.5 || all.y < view.y - 0.5 || all.x + all.w > view.x + view.width + 0.5
      || all.y + all.h > view.y + view.height + 0.5) problems.push(`drawn outside the viewBox: ${JSON.stringify(all)}`);
  return { problems, nodes: nodes.length, edges: edges.map(e => [e.listener, e.speaker, e.kind]),
           shown: svg.getBoundingClientRect().width, scale };
}"""


def wanted(participants: list[dict[str, Any]], heard: dict[str, Any]) -> set[tuple[str, str, str]]:
    """The arrows the audibility means: a coach's to its agent a whisper, one from music per listener."""
    coaches = {p["label"]: p["coach"] for p in participants if p["mode"] == "coach"}
    edges = {(listener, speaker, "whisper" if coaches.get(speaker) == listener else "voice")
             for listener, speakers in heard["hears"].items() for speaker in speakers}
    return edges | {(listener, "music", "music") for listener in heard["music"]}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_drawing_of_one_to_seven_participants_has_nothing_on_anything(page: Any, name: str) -> None:
    """At about 560 and 800 px wide, the drawing of the case has no node, label or arrowhead on another, no
    arrow through a node or through the music, text of 11 px or more, the arrows `/audibility` means (a
    whisper dashed with one head), and the two arrows of each two-way talk apart."""
    participants, heard = case(name)
    ARTIFACTS.mkdir(exist_ok=True)
    for width in WIDTHS:
        await page.evaluate(DRAW_JS, [width + PANEL_PADDING, participants, heard])
        result = await page.evaluate(CHECK_JS)
        await page.locator("#box").screenshot(path=str(ARTIFACTS / f"drawing-{name}-{width}.png"))
        assert abs(result["shown"] - width) < 2, result["shown"]
        assert result["problems"] == [], (width, result["problems"])
        assert result["nodes"] == len(participants) + (1 if heard["music"] else 0)
        assert {tuple(e) for e in result["edges"]} == wanted(participants, heard)
        assert result["scale"] > 0.9, f"drawn at {result['scale']:.2f} of its size: text would shrink"
        for whisper in await page.locator("#hears g.edge[data-kind=whisper]").all():
            assert await whisper.locator("polygon").count() == 1, "one head: a whisper goes one way"
            dashes = await whisper.locator("path").evaluate("p => getComputedStyle(p).strokeDasharray")
            assert dashes not in ("", "none"), "a whisper is dashed"
            assert await whisper.locator("text").text_content() == "whisper"


async def test_the_drawing_follows_its_width(page: Any) -> None:
    """Drawn at 560 px then shown at 800 px, the drawing lays itself out again at the new width (its text keeps
    its size rather than growing with the picture)."""
    participants, heard = case("5-hold-muted-barge")
    await page.evaluate(DRAW_JS, [560 + PANEL_PADDING, participants, heard])
    assert await page.evaluate("document.querySelector('#hears').viewBox.baseVal.width") < 600
    await page.evaluate("(w) => { document.querySelector('#box').style.width = `${w}px`; }", 800 + PANEL_PADDING)
    await page.wait_for_function("Math.abs(document.querySelector('#hears').viewBox.baseVal.width - 800) < 2",
                                 timeout=2000)
    assert (await page.evaluate(CHECK_JS))["problems"] == []


MINUTE = 60.0


def long_call() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A ten-minute call (customer and alice) in which the customer was held for one second at minute five:
    its `/timeline` and `/events`."""
    def at(seconds: float) -> str:
        return f"2026-01-05T10:{int(seconds // 60):02d}:{seconds % 60:06.3f}Z"
    events = [{"version": v, "at": at(s), "type": t, "actor": None}
              for v, s, t in [(1, 0, "conference.created"), (2, 1, "participant.joined"), (3, 2, "conference.started"),
                              (4, 5, "participant.joined"), (5, 5 * MINUTE, "participant.held"),
                              (6, 5 * MINUTE + 1, "participant.unheld"), (7, 10 * MINUTE, "participant.left")]]
    timeline = {"version": 7, "participants": [
        {"label": "customer", "role": "customer", "intervals": [
            {"kind": "ringing", "from": at(0.5), "to": at(1), "from_version": 1, "to_version": 2},
            {"kind": "joined", "from": at(1), "to": at(10 * MINUTE), "from_version": 2, "to_version": 7},
            {"kind": "hold", "from": at(5 * MINUTE), "to": at(5 * MINUTE + 1), "from_version": 5, "to_version": 6}]},
        {"label": "alice", "role": "agent", "intervals": [
            {"kind": "joined", "from": at(5), "to": at(10 * MINUTE), "from_version": 4, "to_version": 7}]}]}
    return timeline, events


SWIMLANE_JS = """([timeline, events]) => {
  window.scrubbed = [];
  window.drawSwimlane(document.querySelector('#swimlane'), timeline, events,
                      { onScrub: (v) => window.scrubbed.push(v), moment: null });
}"""


async def test_a_one_second_hold_in_a_ten_minute_call_can_be_seen_and_clicked(page: Any) -> None:
    """In the chart of a ten-minute call a one-second hold is a bar at least 6 px wide, and a click on it
    scrubs to the moment the customer was on hold (the hold's first version)."""
    timeline, events = long_call()
    await page.evaluate(SWIMLANE_JS, [timeline, events])
    held = page.locator("#swimlane g[data-lane=customer] rect[data-kind=hold]")
    box = await held.bounding_box()
    assert box is not None and box["width"] >= 6, box
    await page.mouse.click(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    assert json.loads(await page.evaluate("JSON.stringify(window.scrubbed)")) == [5]


async def test_a_long_call_zooms_to_its_last_five_minutes_from_the_keyboard(page: Any) -> None:
    """The chart of a ten-minute call has a "Last 5 minutes" toggle (aria-pressed): Enter on it shows only the
    last five minutes (a bar wholly before them is hidden but keeps its data, one that started before starts at
    the chart's left edge), the focus stays on it, and Enter again shows the whole call; a short call has no
    such button."""
    timeline, events = long_call()
    await page.evaluate(SWIMLANE_JS, [timeline, events])
    zoom = page.locator("#swimlane-zoom")
    assert await zoom.is_visible() and await zoom.get_attribute("aria-pressed") == "false"
    assert (await zoom.text_content() or "").strip() == "Last 5 minutes"
    ringing = page.locator("#swimlane rect[data-kind=ringing]")
    joined = page.locator("#swimlane g[data-lane=alice] rect[data-kind=joined]")
    track = page.locator("#swimlane g[data-lane=alice] rect.swimlane-track")
    whole = await joined.bounding_box()
    assert whole is not None and await ringing.is_visible()

    await zoom.focus()
    await page.keyboard.press("Enter")
    assert await zoom.get_attribute("aria-pressed") == "true"
    assert await page.evaluate("document.activeElement.id") == "swimlane-zoom", "the focus stays on the toggle"
    assert not await ringing.is_visible()
    assert await ringing.get_attribute("data-from-version") == "1", "a hidden bar keeps its data"
    zoomed, plot = await joined.bounding_box(), await track.bounding_box()
    assert zoomed is not None and plot is not None
    assert abs(zoomed["x"] - plot["x"]) < 1.5, (zoomed, plot)
    await page.keyboard.press("Enter")
    assert await zoom.get_attribute("aria-pressed") == "false"
    assert await ringing.is_visible() and await joined.bounding_box() == whole

    short = {**timeline, "participants": [{**p, "intervals": [i for i in p["intervals"] if i["kind"] == "ringing"]}
                                          for p in timeline["participants"][:1]]}
    await page.evaluate(SWIMLANE_JS, [short, events[:2]])
    assert not await zoom.is_visible(), "a short call has nothing to zoom to"
