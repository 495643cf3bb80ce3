"""The browser tests' shared plumbing: confctl served on a real port, browser tokens, a page's logged errors,
signing a page in through its URL fragment, commands through the API, and the drawing's arrows."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.wire import Wire
from tests.e2e.support import KEYS, Stack, build_stack
from tests.support.sse import live_server

WAIT_MS = 5000
SUPERVISOR = ("read", "control", "supervise")
# What chromium itself logs for a connection the network broke (expected where a test cuts the network).
NETWORK_LOG = re.compile(r"^Failed to load resource: net::ERR_[A-Z_]+$")
# The object each page puts on window once its script runs.
PAGE_GLOBALS = {"console": "confctlConsole", "wallboard": "wallboard"}

Edge = tuple[str, str, str]
EDGES_JS = ("[...document.querySelectorAll('#hears g.edge')].map(g =>"
            " [g.dataset.listener, g.dataset.speaker, g.dataset.kind])")


@asynccontextmanager
async def serve(engine: AsyncEngine, *, root_path: str = "", **overrides: Any) -> AsyncIterator[tuple[Stack, str]]:
    """confctl (with the simulator behind it, `overrides` in its settings) on a real port under `root_path`:
    yields the stack and confctl's base URL; the pages are served by confctl itself."""
    async with build_stack(engine, **overrides) as stack:
        try:
            async with live_server(stack.app, root_path=root_path) as api:
                yield stack, api
        finally:
            # What the app's lifespan would release (the server runs without it): the live feed's wake-ups.
            await stack.app.state.container.live.aclose()


async def mint(api: str, scopes: tuple[str, ...] = SUPERVISOR) -> str:
    """A browser token with these scopes, minted with the admin key at `api` (confctl, or a proxy in front of
    it) as a frontend's server would."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{api}/v1/tokens", json={"scopes": list(scopes)},
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def watch(page: Any, ignore: re.Pattern[str] | None = None) -> list[str]:
    """Every error or warning `page` logs from now on, and every error it leaves uncaught, as they come; a
    console message matching `ignore` (chromium's own log of what the test broke on purpose) is left out."""
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type in ("error", "warning") and not (ignore is not None and ignore.match(message.text)):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    return problems


async def sign_in(page: Any, base: str, which: str, token: str) -> None:
    """Open the `which` page ("console" or "wallboard") at `base` with `token` in its URL fragment, and wait
    until it is signed in and its event stream live."""
    response = await page.goto(f"{base}/{which}#token={quote(token)}")
    assert response is not None and response.status == 200, f"confctl serves the {which}"
    await page.wait_for_function(f"window.{PAGE_GLOBALS[which]}?.ready"
                                 " && document.querySelector('#status').dataset.state === 'live'", timeout=WAIT_MS)


async def signed_out(page: Any, base: str, which: str) -> None:
    """Open the `which` page ("console" or "wallboard") at `base` with no token, and wait for its sign-in form."""
    await page.goto(f"{base}/{which}")
    await page.wait_for_selector("#signin:not([hidden])", timeout=WAIT_MS)


async def until(check: Callable[[], Awaitable[bool]], what: str, within_s: float = 5.0) -> None:
    """Poll `check` until it holds: what the page asked for reaches the simulator a moment later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within_s}s: {what}")
        await asyncio.sleep(0.05)


async def post(stack: Stack, path: str, body: dict[str, Any] | None = None, status: int = 202) -> dict[str, Any]:
    """A command through the API (not a page), and everything it causes on the simulator and in confctl."""
    response = await stack.api.post(path, json=body)
    assert response.status_code == status, response.text
    await stack.settle()
    answer: dict[str, Any] = response.json()
    return answer


async def add(stack: Stack, room: str, body: dict[str, Any]) -> dict[str, Any]:
    """A participant added through the API (not a page), once its leg has joined."""
    return await post(stack, f"/v1/conferences/{room}/participants", body)


async def patch(stack: Stack, room: str, label: str, body: dict[str, Any]) -> None:
    """A participant changed through the API (hold, mute, mode), and everything it causes."""
    response = await stack.api.patch(f"/v1/conferences/{room}/participants/{label}", json=body)
    assert response.status_code == 200, response.text
    await stack.settle()


async def call_with_alice(stack: Stack, from_: str = "+15551230001") -> tuple[str, str]:
    """A customer calls in and agent alice joins: (the customer's CallSid, the conference id)."""
    call_sid, room = await stack.inbound_call(from_=from_)
    await add(stack, room, {"to": "client:alice", "role": "agent", "label": "alice"})
    return call_sid, room


async def lose_a_re_read(page: Any, wire: Wire, stack: Stack, room: str) -> None:
    """Hold the customer of `room` through the API while `wire` resets every request for the conference: back
    once the page (loaded through `wire`) has tried to re-read it and a moment has passed for it to notice the
    loss. The wire still blocks those requests (`wire.block()` lets them through again)."""
    seen = len(wire.heads)
    wire.block(f"/v1/conferences/{room}")
    await patch(stack, room, "customer", {"hold": True})

    async def tried() -> bool:
        return any(h.target.startswith(f"/v1/conferences/{room}") for h in wire.heads[seen:])

    await until(tried, "the page tried to re-read the conference")
    await page.wait_for_timeout(300)


def wanted_edges(audibility: dict[str, Any], document: dict[str, Any]) -> set[Edge]:
    """The arrows `/audibility` means: one per (listener, speaker), a coach's to its agent a whisper, and one from
    music per listener of music."""
    coaches = {p["label"]: p["coach"] for p in document["participants"]
               if p["role"] == "supervisor" and p["mode"] == "coach" and p["status"] == "joined"}
    edges = {(listener, speaker, "whisper" if coaches.get(speaker) == listener else "voice")
             for listener, speakers in audibility["hears"].items() for speaker in speakers}
    return edges | {(listener, "music", "music") for listener in audibility["music"]}


async def drawn(page: Any) -> set[Edge]:
    """The arrows the console's drawing shows: (listener, speaker, kind)."""
    return {(listener, speaker, kind) for listener, speaker, kind in await page.evaluate(EDGES_JS)}
