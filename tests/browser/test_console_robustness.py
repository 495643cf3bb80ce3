"""The supervisor console when what is around it misbehaves, in a real browser (Debian's chromium): an accepted
action whose answer a proxy stripped of its body, and a forced theme on a page whose script is slow to arrive.

The broken proxy is played by playwright's request interception (`page.route`): the request really reaches
confctl (`route.fetch`), and only its answer's body is thrown away on the way back. That stands in for a proxy
between the browser and confctl, not for confctl.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.browser.support import WAIT_MS, call_with_alice, mint, sign_in, watch
from tests.e2e.support import Stack

# What #feedback shows, each time its data-state changes (recorded in the page).
WATCH_FEEDBACK = """() => {
  window.feedbackStates = [];
  new MutationObserver(() => window.feedbackStates.push(document.querySelector('#feedback').dataset.state))
    .observe(document.querySelector('#feedback'), {attributes: true, attributeFilter: ['data-state']});
}"""


async def feedback_done(page: Any) -> dict[str, Any]:
    """Wait until #feedback says done (or fail with what it says), then what it says."""
    try:
        await page.wait_for_function("document.querySelector('#feedback').dataset.state === 'done'",
                                     timeout=WAIT_MS)
    except Exception:
        raise AssertionError(await page.evaluate(
            "({state: document.querySelector('#feedback').dataset.state,"
            " text: document.querySelector('#feedback').textContent})")) from None
    shown: dict[str, Any] = await page.evaluate(
        "({text: document.querySelector('#feedback').textContent, states: window.feedbackStates})")
    return shown


async def test_an_accepted_action_whose_answer_lost_its_body_waits_for_its_event(
        browser: Any, served: tuple[Stack, str]) -> None:
    """A 202 with an empty body and no content type (adding an agent) and a 202 with an empty "JSON" body (a warm
    transfer) are successes: the feedback goes pending, then done once the event shows the new leg or the
    consulting transfer; never "refused", and no error is logged."""
    stack, api = served
    _, room = await call_with_alice(stack)
    stripped: list[str] = []

    async def strip_body(route: Any) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        answer = await route.fetch()  # confctl carries the action out; its answer's body is lost on the way
        assert answer.status == 202, await answer.text()
        headers = {k: v for k, v in answer.headers.items()
                   if k.lower() not in ("content-type", "content-length", "content-encoding")}
        if route.request.url.endswith("/transfers"):
            headers["content-type"] = "application/json"  # says JSON, carries nothing
        stripped.append(route.request.url)
        await route.fulfill(status=202, headers=headers, body="")

    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch(page)
    try:
        await page.route(re.compile(r"/v1/conferences/[^/?]+/(participants|transfers)$"), strip_body)
        await sign_in(page, api, "console", await mint(api))
        await page.click(f'#conferences tr[data-conference="{room}"] a')
        await page.wait_for_selector('#participants tr[data-participant="alice"]', timeout=WAIT_MS)
        await page.evaluate(WATCH_FEEDBACK)

        form = "form#add-participant"
        await page.select_option(f"{form} select[name=role]", "agent")
        await page.fill(f"{form} input[name=to]", "client:bob")  # no label: confctl names the leg
        await page.click(f"{form} button[type=submit]")
        shown = await feedback_done(page)
        assert shown["states"][0] == "pending" and "refused" not in shown["states"], shown
        assert "joined" in shown["text"], shown
        doc = await stack.conference(room)
        bob = [p for p in doc["participants"] if p["role"] == "agent" and p["label"] != "alice"]
        assert [p["status"] for p in bob] == ["joined"], doc["participants"]
        await page.wait_for_selector(f'#participants tr[data-participant="{bob[0]["label"]}"]', timeout=WAIT_MS)

        await page.evaluate(WATCH_FEEDBACK)
        form = "form#warm-transfer"
        await page.select_option(f"{form} select[name=from]", "alice")
        await page.fill(f"{form} input[name=to]", "client:carol")
        await page.fill(f"{form} input[name=label]", "carol")
        await page.click(f"{form} button[type=submit]")
        shown = await feedback_done(page)
        assert shown["states"][0] == "pending" and "refused" not in shown["states"], shown
        assert "consulting" in shown["text"], shown
        await page.wait_for_selector("#transfer [data-state=consulting]", timeout=WAIT_MS)
    finally:
        await page.close()
    assert len(stripped) == 2, stripped
    assert [t["state"] for t in (await stack.conference(room))["transfers"]] == ["consulting"]
    assert problems == [], problems


async def test_a_forced_theme_is_applied_before_the_page_script_runs(browser: Any, served: tuple[Stack, str]) -> None:
    """With dark chosen on the #theme button (kept in localStorage) and a light system, the page is dark from its
    first paint: while app.js is still on its way (held back), <html data-theme="dark"> is set and the body is
    dark already; once app.js runs, the button says dark."""
    _, api = served
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
    problems = watch(page)
    released = asyncio.Event()
    held: list[str] = []

    async def hold_back(route: Any) -> None:
        held.append(route.request.url)
        await released.wait()
        await route.continue_()

    try:
        await page.goto(f"{api}/console")
        await page.wait_for_function("window.confctlConsole !== undefined", timeout=WAIT_MS)
        light = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        await page.evaluate("localStorage.setItem('confctl.console.theme', 'dark')")

        await page.route("**/console/app.js", hold_back)
        await page.goto(f"{api}/console", wait_until="commit")
        await page.wait_for_selector("#theme", state="attached", timeout=WAIT_MS)  # the body is parsed
        before = await page.evaluate("({theme: document.documentElement.dataset.theme ?? null,"
                                     " background: getComputedStyle(document.body).backgroundColor,"
                                     " script: window.confctlConsole !== undefined})")
        assert held and before["script"] is False, ("app.js is still held back", held, before)
        assert before["theme"] == "dark", before
        assert before["background"] != light, before

        released.set()
        await page.wait_for_function("window.confctlConsole !== undefined", timeout=WAIT_MS)
        assert await page.inner_text("#theme .theme-name") == "dark"
    finally:
        released.set()
        await page.close()
    assert problems == [], problems
