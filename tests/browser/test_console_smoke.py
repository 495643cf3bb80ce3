"""The supervisor console at /console in a real browser (Debian's chromium): a smoke test of the shell.

Signed in with a browser token in the URL fragment, the page lists a call started on the simulator without a
reload, opens it on Enter, shows its participants, puts the customer on hold from its button (the simulator's
ground truth shows it, the feedback goes pending then done), and logs no console error or warning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.support import KEYS, Stack, build_stack
from tests.support.sse import live_server


@pytest.fixture
async def served(engine: AsyncEngine) -> AsyncIterator[tuple[Stack, str]]:
    """confctl (with the simulator behind it) on a real port: the page is served by confctl itself."""
    async with build_stack(engine) as stack:
        try:
            async with live_server(stack.app) as api:
                yield stack, api
        finally:
            await stack.app.state.container.live.aclose()


async def mint(api: str) -> str:
    """A browser token with every scope the console uses, minted with the admin key."""
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        response = await client.post("/v1/tokens", json={"scopes": ["read", "control", "supervise"]},
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def test_console_lists_a_new_call_opens_it_and_holds_the_customer(
        browser: Any, served: tuple[Stack, str]) -> None:
    """A call started after the page loaded appears in the list; Enter on its link opens it with its
    participants; the customer's hold button puts the customer on hold on the simulator, the feedback goes from
    pending to done, and the browser logs no error or warning."""
    stack, api = served
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        response = await page.goto(f"{api}/console#token={quote(await mint(api))}")
        assert response is not None and response.status == 200
        await page.wait_for_function("window.confctlConsole.ready && document.querySelector('#status')"
                                     ".dataset.state === 'live'", timeout=5000)
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
