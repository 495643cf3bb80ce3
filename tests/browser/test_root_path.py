"""The pages behind a proxy that serves confctl under a prefix and strips it (`serve --root-path /confctl`): the
index's links, the console's and the wallboard's assets, API calls and event stream all carry the prefix, so the
pages work there exactly as at the top; nothing is asked for outside the prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.prefix_proxy import PrefixProxy
from tests.e2e.support import KEYS, Stack, build_stack
from tests.support.sse import live_server

PREFIX = "/confctl"


@pytest.fixture
async def behind_prefix(engine: AsyncEngine) -> AsyncIterator[tuple[Stack, PrefixProxy]]:
    """confctl under uvicorn's root_path, reached only through the prefix-stripping proxy."""
    async with build_stack(engine) as stack:
        try:
            async with live_server(stack.app, root_path=PREFIX) as api:
                proxy = await PrefixProxy(api, PREFIX).start()
                try:
                    yield stack, proxy
                finally:
                    await proxy.aclose()
        finally:
            await stack.app.state.container.live.aclose()


async def _token(proxy: PrefixProxy) -> str:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as client:
        response = await client.post(f"{proxy.url}/v1/tokens", json={"scopes": ["read", "control", "supervise"]},
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


async def test_the_console_works_under_a_prefix(browser: Any, behind_prefix: tuple[Stack, PrefixProxy]) -> None:
    """From the index's link to the console: signed in, a new call listed live, opened, its customer held from the
    console (the simulator holds it, the drawing shows music), with every request inside the prefix."""
    stack, proxy = behind_prefix
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = _watch(page)
    try:
        await page.goto(f"{proxy.url}/")
        assert await page.get_attribute("a:text('Supervisor console')", "href") == f"{PREFIX}/console"
        await page.goto(f"{proxy.url}/console#token={quote(await _token(proxy))}")
        await page.wait_for_function("window.confctlConsole.ready && document.querySelector('#status')"
                                     ".dataset.state === 'live'", timeout=5000)
        _, room = await stack.inbound_call(from_="+15551230091")
        added = await stack.api.post(f"/v1/conferences/{room}/participants",
                                     json={"to": "client:alice", "role": "agent", "label": "alice"})
        assert added.status_code == 202, added.text
        await stack.settle()
        await page.click(f'tr[data-conference="{room}"] a', timeout=5000)
        await page.wait_for_selector('#hears g.edge[data-listener="customer"][data-speaker="alice"]', timeout=5000)
        await page.click('#participants tr[data-participant="customer"] button[data-action="hold"]')
        await page.wait_for_selector('#hears g.edge[data-listener="customer"][data-speaker="music"]', timeout=5000)
        truth = await stack.ground_truth(room)
        held = [p for p in truth["participants"] if p.get("label") == "customer"]
        assert held and held[0]["hold"] is True, truth
    finally:
        await page.close()
    assert proxy.outside == [], "every request carried the prefix"
    assert problems == [], problems


async def test_the_wallboard_works_under_a_prefix(browser: Any, behind_prefix: tuple[Stack, PrefixProxy]) -> None:
    """The wallboard's assets, lists and stream go through the prefix: a call shows live."""
    stack, proxy = behind_prefix
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    problems = _watch(page)
    try:
        await page.goto(f"{proxy.url}/wallboard#token={quote(await _token(proxy))}")
        await page.wait_for_function("window.wallboard.ready && document.querySelector('#status').dataset.state"
                                     " === 'live'", timeout=5000)
        await stack.inbound_call(from_="+15551230092")
        await page.wait_for_selector('[data-count="live"]:text-is("1")', timeout=5000)
    finally:
        await page.close()
    assert proxy.outside == [], "every request carried the prefix"
    assert problems == [], problems
