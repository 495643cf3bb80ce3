"""The pages behind a proxy that serves confctl under a prefix and strips it (`serve --root-path /confctl`): the
index's links, the console's and the wallboard's assets, API calls and event stream all carry the prefix, so the
pages work there exactly as at the top; nothing is asked for outside the prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.prefix_proxy import PrefixProxy
from tests.browser.support import call_with_alice, mint, serve, sign_in, watch
from tests.e2e.support import Stack

PREFIX = "/confctl"


@pytest.fixture
async def behind_prefix(engine: AsyncEngine) -> AsyncIterator[tuple[Stack, PrefixProxy]]:
    """confctl under uvicorn's root_path, reached only through the prefix-stripping proxy."""
    async with serve(engine, root_path=PREFIX) as (stack, api):
        proxy = await PrefixProxy(api, PREFIX).start()
        try:
            yield stack, proxy
        finally:
            await proxy.aclose()


async def test_the_console_works_under_a_prefix(browser: Any, behind_prefix: tuple[Stack, PrefixProxy]) -> None:
    """From the index's link to the console: signed in, a new call listed live, opened, its customer held from the
    console (the simulator holds it, the drawing shows music), with every request inside the prefix."""
    stack, proxy = behind_prefix
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch(page)
    try:
        await page.goto(f"{proxy.url}/")
        assert await page.get_attribute("a:text('Supervisor console')", "href") == f"{PREFIX}/console"
        await sign_in(page, proxy.url, "console", await mint(proxy.url))
        _, room = await call_with_alice(stack, from_="+15551230091")
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
    problems = watch(page)
    try:
        await sign_in(page, proxy.url, "wallboard", await mint(proxy.url))
        await stack.inbound_call(from_="+15551230092")
        await page.wait_for_selector('[data-count="live"]:text-is("1")', timeout=5000)
    finally:
        await page.close()
    assert proxy.outside == [], "every request carried the prefix"
    assert problems == [], problems
