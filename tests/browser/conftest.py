"""The browser tests' one headless Debian chromium per module (playwright drives it; it never downloads one), and
confctl with the simulator behind it on a real port (tests/browser/support.py has the plain helpers)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.support import serve
from tests.e2e.support import Stack

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


class CspBypassingBrowser:
    """The browser, whose pages by default bypass the pages' Content-Security-Policy.

    Playwright compiles a `wait_for_function` predicate with eval, which the pages' policy (no 'unsafe-eval')
    refuses; the tests wait that way throughout. tests/browser/test_csp.py opens the pages under their real
    policy (`new_page(bypass_csp=False)`) and drives them with waits that need no eval.
    """

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)

    async def new_page(self, **options: Any) -> Any:
        options.setdefault("bypass_csp", True)
        return await self._browser.new_page(**options)

    async def new_context(self, **options: Any) -> Any:
        options.setdefault("bypass_csp", True)
        return await self._browser.new_context(**options)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless chromium for the module, on a fresh, empty profile (playwright's temporary one)."""
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: run scripts/bootstrap (it installs Debian's chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield CspBypassingBrowser(chromium)
        finally:
            await chromium.close()


@pytest.fixture
async def served(engine: AsyncEngine) -> AsyncIterator[tuple[Stack, str]]:
    """confctl (with the simulator behind it) on a real port: the pages are served by confctl itself."""
    async with serve(engine) as stack_and_api:
        yield stack_and_api
