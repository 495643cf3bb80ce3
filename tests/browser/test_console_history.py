"""The console's drawing of who hears whom and its swim-lane chart, in a real browser (Debian's chromium).

A coach switched through the API (not the console) shows in the drawing within a second, and the drawing is
`/audibility` edge for edge; the swim-lane chart of a finished warm transfer has exactly the intervals of
`/timeline` (which the raw `/events` place), and scrubbing to the consult (a click in the chart, then the
keyboard) shows the customer on music, as `/audibility?at=` says, until "Back to live".
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.support import Edge, drawn, mint, post, sign_in, wanted_edges, watch
from tests.e2e.support import Stack

# The nodes whose shape the whisper's label overlaps (by their boxes in the drawing's own units).
WHISPER_UNDER_JS = """(() => {
  const label = document.querySelector('#hears g.edge[data-kind=whisper] text').getBBox();
  return [...document.querySelectorAll('#hears g[data-node]')].filter(g => {
    const b = g.querySelector('.node-shape').getBBox();
    return label.x < b.x + b.width && b.x < label.x + label.width && label.y < b.y + b.height
      && b.y < label.y + label.height;
  }).map(g => g.dataset.node);
})()"""
RECTS_JS = """[...document.querySelectorAll('#swimlane g[data-lane]')].flatMap(lane =>
  [...lane.querySelectorAll('rect[data-kind]')].map(r => [lane.dataset.lane, r.dataset.kind, r.dataset.from,
   r.dataset.to, r.dataset.fromVersion, r.dataset.toVersion]))"""


async def open_console(browser: Any, api: str, room: str) -> tuple[Any, list[str]]:
    """The console, signed in through its URL fragment, showing conference `room`, and the errors and warnings
    it logs from the start."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)
    await sign_in(page, api, "console", await mint(api))
    await page.evaluate("(room) => { location.hash = `#/conferences/${room}`; }", room)
    await page.wait_for_function("(room) => document.querySelector('#detail').dataset.conference === room"
                                 " && document.querySelector('#swimlane rect[data-kind]') !== null", arg=room,
                                 timeout=5000)
    return page, problems


async def until_drawn(page: Any, want: set[Edge]) -> None:
    """Wait (up to 5 s) until the drawing shows exactly `want` (the page re-reads after each stream event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while (seen := await drawn(page)) != want:
        if loop.time() > deadline:
            raise AssertionError(f"the drawing shows {sorted(seen)}, the API says {sorted(want)}")
        await asyncio.sleep(0.05)


async def test_a_coach_switched_through_the_api_shows_in_the_drawing_within_a_second(
        browser: Any, served: tuple[Stack, str]) -> None:
    """A supervisor switched from monitor to coach by a PATCH (not by the console) is drawn whispering to the
    agent, one-way (the customer does not hear the coach), its "whisper" label under no node, less than a second
    after the API answered; the drawing and its text list are `/audibility`, arrow for arrow, before and after."""
    stack, api = served
    _, room = await stack.inbound_call()
    await post(stack, f"/v1/conferences/{room}/participants", {"to": "client:alice", "role": "agent", "label": "alice"})
    await post(stack, f"/v1/conferences/{room}/participants",
               {"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "monitor"})
    page, problems = await open_console(browser, api, room)
    try:
        before = await stack.our_audibility(room)
        monitoring = wanted_edges(before, await stack.conference(room))
        assert ("sue", "alice", "voice") in monitoring and not any(s == "sue" for _, s, _ in monitoring)
        await until_drawn(page, monitoring)
        nodes = await page.evaluate("[...document.querySelectorAll('#hears g[data-node]')].map(g =>"
                                    " [g.dataset.node, g.dataset.role])")
        assert sorted(nodes) == [["alice", "agent"], ["customer", "customer"], ["sue", "supervisor"]]

        response = await stack.api.patch(f"/v1/conferences/{room}/participants/sue",
                                         json={"mode": "coach", "coach": "alice"})
        answered = asyncio.get_running_loop().time()
        assert response.status_code == 200, response.text
        await page.wait_for_function(
            "document.querySelector('#hears g.edge[data-kind=whisper][data-speaker=sue][data-listener=alice]')"
            " && !document.querySelector('#hears g.edge[data-listener=customer][data-speaker=sue]')", timeout=1000)
        elapsed = asyncio.get_running_loop().time() - answered
        assert elapsed < 1.0, f"the whisper was drawn {elapsed:.2f} s after the API answered"

        await stack.settle()
        after = await stack.our_audibility(room)
        coaching = wanted_edges(after, await stack.conference(room))
        assert ("alice", "sue", "whisper") in coaching and not any(
            speaker == "sue" and listener != "alice" for listener, speaker, _ in coaching)
        await until_drawn(page, coaching)
        whisper = page.locator("#hears g.edge[data-kind=whisper]")
        assert await whisper.locator("title").text_content() == "alice hears sue (whisper)"
        assert "whisper" in (await whisper.locator("text").text_content() or ""), "the whisper is labelled"
        covered = await page.evaluate(WHISPER_UNDER_JS)
        assert covered == [], f"the whisper's label is under {covered}"
        dashes = await whisper.locator("path").evaluate("p => getComputedStyle(p).strokeDasharray")
        assert dashes not in ("", "none"), "the whisper is dashed"
        assert await whisper.locator("polygon").count() == 1, "one arrowhead: the whisper goes one way"
        items = await page.evaluate("[...document.querySelectorAll('#hears-list li')].map(li => li.textContent)")
        assert "alice hears customer, sue (whisper)" in items, items
        assert not any(item.startswith("customer hears") and "sue" in item for item in items), items
    finally:
        await page.close()
    assert problems == [], problems


def interval_rows(timeline: dict[str, Any]) -> list[list[str]]:
    """`/timeline`'s intervals as the chart's rectangles carry them: lane, kind, from, to, versions."""
    def text(value: Any) -> str:
        return "" if value is None else str(value)
    return sorted([p["label"], i["kind"], i["from"], text(i["to"]), str(i["from_version"]), text(i["to_version"])]
                  for p in timeline["participants"] for i in p["intervals"])


async def test_the_swimlane_of_a_warm_transfer_is_the_log_and_scrubbing_to_the_consult_shows_the_music(
        browser: Any, served: tuple[Stack, str]) -> None:
    """The chart of a completed warm transfer (alice consults bob, then leaves him the customer) has one
    rectangle per `/timeline` interval, placed where the raw events say; a click in the middle of the customer's
    hold scrubs to a version inside the consult, where the drawing is `/audibility?at=` (the customer hears only
    music, alice and bob talk); the arrow keys move the moment one version; "Back to live" shows now again."""
    stack, api = served
    _, room = await stack.inbound_call()
    await post(stack, f"/v1/conferences/{room}/participants", {"to": "client:alice", "role": "agent", "label": "alice"})
    transfer = await post(stack, f"/v1/conferences/{room}/transfers",
                          {"kind": "warm", "from": "alice", "to": "client:bob", "label": "bob"})
    await asyncio.sleep(1.0)  # the consult lasts long enough to be most of the customer's hold on the chart
    await post(stack, f"/v1/transfers/{transfer['id']}/complete", status=200)
    document = await stack.conference(room)
    assert [t["state"] for t in document["transfers"]] == ["completed"]
    timeline = (await stack.api.get(f"/v1/conferences/{room}/timeline")).json()
    events = await stack.events(room)
    by_version = {e["version"]: e for e in events}

    # The log: the customer's hold starts at the event that put the customer on hold and ends at the one that
    # took it off, and covers the consult (transfer.consulting .. transfer.completed).
    hold = next(i for p in timeline["participants"] if p["label"] == "customer" for i in p["intervals"]
                if i["kind"] == "hold")
    start, end = by_version[hold["from_version"]], by_version[hold["to_version"]]
    assert start["type"] in ("participant.updated", "participant.held"), start
    assert (start["data"]["label"], start["data"]["flags"]["hold"], start["at"]) == ("customer", True, hold["from"])
    assert end["type"] in ("participant.updated", "participant.unheld"), end
    assert (end["data"]["label"], end["data"]["flags"]["hold"], end["at"]) == ("customer", False, hold["to"])
    consulting = next(e["version"] for e in events if e["type"] == "transfer.consulting")
    completed = next(e["version"] for e in events if e["type"] == "transfer.completed")
    assert hold["from_version"] < consulting < completed <= hold["to_version"]
    bob = next(i for p in timeline["participants"] if p["label"] == "bob" for i in p["intervals"]
               if i["kind"] == "joined")
    assert (by_version[bob["from_version"]]["type"], by_version[bob["from_version"]]["data"]["label"]) == \
        ("participant.joined", "bob")

    page, problems = await open_console(browser, api, room)
    try:
        await page.wait_for_function("(v) => window.confctlConsole.version === v", arg=document["version"],
                                     timeout=5000)
        lanes = await page.evaluate("[...document.querySelectorAll('#swimlane g[data-lane]')]"
                                    ".map(g => g.dataset.lane)")
        assert lanes == [p["label"] for p in timeline["participants"]] == ["customer", "alice", "bob"]
        assert sorted(await page.evaluate(RECTS_JS)) == interval_rows(timeline)
        assert await page.locator("#swimlane .swimlane-legend li").count() == 7, "a legend entry per kind"
        scrub = page.locator("#scrub")
        assert (await scrub.get_attribute("min"), await scrub.get_attribute("max")) == \
            (str(events[0]["version"]), str(events[-1]["version"]))
        assert not await page.is_visible("#moment"), "live: no moment shown"

        held = page.locator("#swimlane g[data-lane=customer] rect[data-kind=hold]")
        await held.scroll_into_view_if_needed()
        box = await held.bounding_box()
        assert box is not None and box["width"] > 40, box
        await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.wait_for_function("window.confctlConsole.moment !== null", timeout=5000)
        moment = await page.evaluate("window.confctlConsole.moment")
        assert consulting <= moment < completed, (moment, consulting, completed)
        assert await page.is_visible("#moment")
        then = (await stack.api.get(f"/v1/conferences/{room}/audibility", params={"at": str(moment)})).json()
        assert then["music"] == ["customer"] and then["hears"]["customer"] == [], then
        await until_drawn(page, wanted_edges(then, document))
        assert {("customer", "music", "music"), ("alice", "bob", "voice"), ("bob", "alice", "voice")} <= \
            await drawn(page)
        marker = page.locator("#swimlane .swimlane-marker")
        assert await marker.get_attribute("data-version") == str(moment)
        text = await scrub.get_attribute("aria-valuetext") or ""
        assert by_version[moment]["type"] in text, text

        await scrub.focus()
        await page.keyboard.press("ArrowLeft")
        await page.wait_for_function("(v) => window.confctlConsole.moment === v", arg=moment - 1, timeout=5000)
        assert by_version[moment - 1]["type"] in (await scrub.get_attribute("aria-valuetext") or "")
        earlier = (await stack.api.get(f"/v1/conferences/{room}/audibility", params={"at": str(moment - 1)})).json()
        await until_drawn(page, wanted_edges(earlier, document))

        await page.click("#live")
        await page.wait_for_function("window.confctlConsole.moment === null", timeout=5000)
        assert not await page.is_visible("#moment")
        now = await stack.our_audibility(room)
        assert now["music"] == [] and now["hears"]["customer"] == ["bob"], now
        await until_drawn(page, wanted_edges(now, document))
        assert await marker.get_attribute("visibility") == "hidden"
    finally:
        await page.close()
    assert problems == [], problems
