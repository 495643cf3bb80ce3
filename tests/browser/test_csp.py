"""The console and the wallboard work under their real Content-Security-Policy (no inline script or style, nothing
from elsewhere, no eval): driven through their main flows with waits that need no eval, they break no directive,
and a load the policy forbids is really refused (so the check is not vacuous).

The other browser tests bypass the policy only because playwright's `wait_for_function` needs eval.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.browser.support import call_with_alice, mint, watch
from tests.e2e.support import Stack

# Recorded from the first script on, before the page's own: every directive a load or an element broke.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""


async def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = await browser.new_page(bypass_csp=False, viewport={"width": 1280, "height": 800})
    problems = watch(page)
    await page.add_init_script(RECORD_VIOLATIONS)
    response = await page.goto(url)
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return page, problems


async def test_the_console_breaks_no_directive_of_its_policy(browser: Any, served: tuple[Stack, str]) -> None:
    """Signed in, a call listed live, opened, its customer held from the console (the drawing shows music), the
    swim-lane scrubbed and the theme switched: no violation and no console error; an image from another origin
    injected afterwards is refused and reported."""
    stack, api = served
    page, problems = await _open(browser, f"{api}/console#token={quote(await mint(api))}")
    try:
        await page.wait_for_selector("#status[data-state=live]", timeout=5000)
        _, room = await call_with_alice(stack, from_="+15551230077")
        await page.click(f'tr[data-conference="{room}"] a', timeout=5000)
        await page.wait_for_selector('#participants tr[data-participant="alice"][data-status="joined"]',
                                     timeout=5000)
        await page.wait_for_selector('#hears g.edge[data-listener="customer"][data-speaker="alice"]', timeout=5000)
        await page.click('#participants tr[data-participant="customer"] button[data-action="hold"]')
        await page.wait_for_selector('#hears g.edge[data-listener="customer"][data-speaker="music"]', timeout=5000)
        await page.wait_for_selector("#feedback[data-state=done]", timeout=5000)
        assert (await stack.ground_truth(room))["participants"], "the simulator has the conference"
        await page.wait_for_selector('#swimlane rect[data-kind="hold"]', timeout=5000)
        await page.focus("#scrub")
        await page.keyboard.press("Home")  # the first version: before alice was there
        await page.wait_for_selector("#moment:not([hidden])", timeout=5000)
        await page.wait_for_selector('#hears g.edge[data-speaker="alice"]', state="detached", timeout=5000)
        assert await page.evaluate("window.confctlConsole.moment") == 1
        await page.click("#live")
        await page.click("#theme")
        await page.wait_for_selector("html[data-theme]", timeout=5000)
        assert await page.evaluate("window.__violations") == [], "the console needs nothing its policy forbids"
        assert problems == [], problems

        await page.evaluate("""() => { const img = document.createElement("img");
            img.src = "https://example.invalid/pixel.png"; document.body.append(img); }""")
        await page.wait_for_timeout(300)
        refused = await page.evaluate("window.__violations")
        assert refused == ["img-src https://example.invalid/pixel.png"], "the policy is really enforced"
    finally:
        await page.close()


async def test_the_wallboard_breaks_no_directive_of_its_policy(browser: Any, served: tuple[Stack, str]) -> None:
    """Signed in with a read token, the wallboard counts a call live under its policy, with no violation and no
    console error."""
    stack, api = served
    page, problems = await _open(browser, f"{api}/wallboard#token={quote(await mint(api, ('read',)))}")
    try:
        await page.wait_for_selector("#status[data-state=live]", timeout=5000)
        await stack.inbound_call(from_="+15551230078")
        await page.wait_for_selector('[data-count="live"]:text-is("1")', timeout=5000)
        await page.wait_for_selector('[data-count="waiting"]:text-is("1")', timeout=5000)
        assert await page.evaluate("window.__violations") == []
        assert problems == [], problems
    finally:
        await page.close()
