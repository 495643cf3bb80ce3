"""The supervisor console at /console in a real browser (Debian's chromium): a smoke test of the shell.

Signed in with a browser token in the URL fragment, the page lists a call started on the simulator without a
reload, opens it on Enter, shows its participants, puts the customer on hold from its button (the simulator's
ground truth shows it, the feedback goes pending then done), and logs no console error or warning.
"""

from __future__ import annotations

from typing import Any

from tests.browser.support import mint, sign_in, watch
from tests.e2e.support import Stack


async def test_console_lists_a_new_call_opens_it_and_holds_the_customer(
        browser: Any, served: tuple[Stack, str]) -> None:
    """A call started after the page loaded appears in the list; Enter on its link opens it with its
    participants; the customer's hold button puts the customer on hold on the simulator, the feedback goes from
    pending to done, and the browser logs no error or warning."""
    stack, api = served
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch(page)
    try:
        await sign_in(page, api, "console", await mint(api))
        assert "token" not in page.url, "the token leaves the address bar at once"
        _, room = await stack.inbound_call(from_="+15551230042")
        row = page.locator(f'tr[data-conference="{room}"]')
        await row.wait_for(timeout=5000)
        assert await row.locator('[data-col="customer"]').text_content() == "+15551230042"
        await row.locator("a").focus()
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f'#detail[data-conference="{room}"] tr[data-participant="customer"]',
                                     timeout=5000)
        assert await page.evaluate("window.confctlConsole.selected") == room
        await page.wait_for_selector('#hears [data-node="customer"]', timeout=5000)
        await page.click('tr[data-participant="customer"] button[data-action="hold"]')
        await page.wait_for_selector('#feedback[data-state="done"]', timeout=5000)
        truth = await stack.ground_truth(room)
        assert [p["hold"] for p in truth["participants"] if p["label"] == "customer"] == [True], truth
        await page.wait_for_selector('tr[data-participant="customer"] td[data-col="hold"][data-value="true"]',
                                     timeout=5000)
        await page.wait_for_selector(f'tr[data-conference="{room}"] td[data-col="hold"]:not(:empty)', timeout=5000)
    finally:
        await page.close()
    assert problems == [], problems
