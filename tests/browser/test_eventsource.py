"""A real browser (Debian's chromium, driven by playwright) against confctl on a real port: a page from an
allowed origin follows the live feed with EventSource and a browser token in `?access_token=`, and calls the
API with fetch; an API key in the URL is refused, and a page from another origin is blocked by CORS.

The test mints the token (as a frontend's server would) and hands the page a ready URL; the page mints nothing.
scripts/bootstrap installs /usr/bin/chromium; playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser.support import mint, serve
from tests.e2e.support import KEYS, Stack
from tests.support.sse import live_server

EVENT_TYPES = ["conference.created", "conference.started", "conference.ended", "participant.joined",
               "participant.left", "participant.held", "participant.unheld", "participant.update_requested",
               "participant.updated", "call.status_changed"]

# The page: opens the EventSource it is given (?stream=) and records what arrives; `call` runs a CORS fetch.
PAGE = """<!doctype html><meta charset="utf-8"><title>confctl feed</title>
<script>
const types = __TYPES__;
window.received = []; window.errors = 0; window.state = null;
const url = new URLSearchParams(location.search).get("stream");
if (url) {
  const source = new EventSource(url);
  for (const type of types) {
    source.addEventListener(type, (e) => window.received.push({id: e.lastEventId, type: e.type, data: e.data}));
  }
  source.onopen = () => { window.state = source.readyState; };
  source.onerror = () => { window.errors += 1; window.state = source.readyState; };
}
window.call = async (url, token) => {
  try {
    const response = await fetch(url, {headers: {"Authorization": "Bearer " + token}});
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {blocked: String(error)};
  }
};
</script>""".replace("__TYPES__", json.dumps(EVENT_TYPES))


def _page_app() -> Starlette:
    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/", page)])


class Sites:
    """confctl on a real port, and two page servers: one an allowed origin, one not."""

    def __init__(self, stack: Stack, api: str, allowed: str, other: str) -> None:
        self.stack, self.api, self.allowed, self.other = stack, api, allowed, other


@pytest.fixture
async def sites(engine: AsyncEngine) -> AsyncIterator[Sites]:
    """The page servers first (their origins go into confctl's CONFCTL_CORS_ORIGINS), then confctl itself.

    Streams last 1.5 s, so the browser's own reconnect (with Last-Event-ID, a preflighted header) is exercised.
    """
    async with live_server(_page_app()) as allowed, live_server(_page_app()) as other, \
            serve(engine, cors_origins=[allowed], sse_max_s=1.5) as (stack, api):
        yield Sites(stack, api, allowed, other)


async def test_eventsource_with_a_browser_token_receives_the_live_events(browser: Any, sites: Sites) -> None:
    """The page's EventSource on /v1/stream?access_token=<token> gets the events of an inbound call as they are
    stored, with no repeat across the server's stream closes and the browser's reconnects."""
    page = await browser.new_page()
    try:
        stream = f"{sites.api}/v1/stream?access_token={quote(await mint(sites.api, ('read',)))}"
        await page.goto(f"{sites.allowed}/?stream={quote(stream)}")
        await page.wait_for_function("window.state === EventSource.OPEN", timeout=5000)
        _, room = await sites.stack.inbound_call()
        await page.wait_for_function("window.received.some(e => e.type === 'participant.joined')", timeout=5000)
        await page.wait_for_timeout(2000)  # the server closes the stream; the browser resumes it
        await sites.stack.hang_up(_customer(room))
        await page.wait_for_function("window.received.some(e => e.type === 'conference.ended')", timeout=8000)
        received, reconnects, state = await page.evaluate("[window.received, window.errors, window.state]")
    finally:
        await page.close()
    assert reconnects >= 1 and state == 1, "the server closed the stream at least once; the browser resumed it"
    assert received[0]["type"] == "conference.created"
    assert all(json.loads(e["data"])["conference_id"] == room for e in received)
    ids = [int(e["id"]) for e in received]
    assert ids == sorted(set(ids)), "every event once, in order, across reconnects"
    stored = await sites.stack.events(room)
    assert [e["type"] for e in received] == [e["type"] for e in stored if e["type"] in EVENT_TYPES]


def _customer(room: str) -> str:
    return room.removeprefix("room-")


async def test_an_api_key_in_the_url_is_refused_and_nothing_arrives(browser: Any, sites: Sites) -> None:
    """An EventSource with the API key as access_token is refused by confctl (401): onerror, readyState CLOSED,
    no event, no reconnect."""
    page = await browser.new_page()
    try:
        await sites.stack.inbound_call()
        stream = f"{sites.api}/v1/stream?access_token={quote(KEYS['admin'])}"
        await page.goto(f"{sites.allowed}/?stream={quote(stream)}")
        await page.wait_for_function("window.state === EventSource.CLOSED", timeout=5000)
        await page.wait_for_timeout(1500)  # a refused EventSource does not reconnect
        assert await page.evaluate("[window.received.length, window.state, window.errors]") == [0, 2, 1]
        # What refused it is confctl's 401 (readable, CORS headers and all), not the browser's CORS check.
        refusal = await page.evaluate("(url) => fetch(url).then(async r => [r.status, (await r.json()).code])",
                                      stream)
        assert refusal == [401, "unauthorized"]
    finally:
        await page.close()


async def test_fetch_works_from_the_allowed_origin_and_is_blocked_from_another(browser: Any, sites: Sites) -> None:
    """A fetch with a browser token from the allowed origin reads the answer; from another origin the browser
    blocks it, because confctl's answer to its preflight allows no such origin."""
    token = await mint(sites.api, ("read",))
    url = f"{sites.api}/v1/conferences"
    results = []
    for origin in (sites.allowed, sites.other):
        page = await browser.new_page()
        try:
            await page.goto(f"{origin}/")
            results.append(await page.evaluate("([url, token]) => window.call(url, token)", [url, token]))
        finally:
            await page.close()
    allowed, other = results
    assert allowed == {"status": 200, "body": {"items": [], "next_cursor": None}}, allowed
    assert "blocked" in other and "Failed to fetch" in other["blocked"], other
