"""Live-update test plumbing: a real uvicorn server in the test's event loop, and an SSE reader.

httpx's ASGITransport hands back a response only once the app has finished it, so an endless stream needs a
real server: uvicorn on a free loopback port, in the same loop as the app's database engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp


class _QuietServer(uvicorn.Server):
    """uvicorn that leaves signals to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def live_server(app: ASGIApp, root_path: str = "") -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) for the duration, under `root_path` as `serve --root-path` does;
    yields its base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=1, root_path=root_path)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start within 5 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=5)
        sock.close()


@dataclass
class Message:
    """One SSE message (or a comment-only block)."""

    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def parse(text: str) -> list[Message]:
    """Every block of an event stream, in order."""
    return list(_blocks(text.splitlines()))


def _blocks(lines: Any) -> Iterator[Message]:
    current: Message | None = None
    for line in lines:
        if line == "":
            if current is not None:
                yield current
            current = None
            continue
        current = current or Message()
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comments.append(value)
        elif name == "data":
            current.data = f"{current.data}\n{value}" if current.data else value
        elif name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "retry":
            current.retry = int(value)
    if current is not None:
        yield current


class Reader:
    """Reads messages off an open streaming response, each with a deadline.

    A task pumps the response into a queue, so a read that times out loses nothing and the stream stays usable.
    """

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.status_code
        assert response.headers["content-type"].startswith("text/event-stream")
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._read(response))
        self.seen: list[Message] = []

    async def _read(self, response: httpx.Response) -> None:
        block: list[str] = []
        try:
            async for line in response.aiter_lines():
                if line:
                    block.append(line)
                elif block:
                    self._queue.put_nowait(next(_blocks(block)))
                    block = []
        finally:
            self._queue.put_nowait(None)

    async def aclose(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._pump

    async def next(self, within_s: float = 5.0) -> Message:
        """The next block (message or comment); EOFError once the server has closed the stream."""
        message = await asyncio.wait_for(self._queue.get(), within_s)
        if message is None:
            self._queue.put_nowait(None)  # stays at the end for later reads
            raise EOFError("the stream ended")
        self.seen.append(message)
        return message

    async def events(self, count: int, within_s: float = 5.0) -> list[Message]:
        """The next `count` messages that carry an id (heartbeats and hints skipped)."""
        found: list[Message] = []
        while len(found) < count:
            message = await self.next(within_s)
            if message.id is not None:
                found.append(message)
        return found

    async def nothing_for(self, seconds: float) -> None:
        """Assert that no event arrives for `seconds` (heartbeat comments are fine)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                message = await self.next(left)
            except TimeoutError:
                return
            assert message.id is None, f"unexpected event {message}"


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Reader]:
    """GET an event stream and read it until the block ends (which closes the connection)."""
    async with client.stream("GET", path, headers=headers, params=params or None) as response:
        reader = Reader(response)
        try:
            yield reader
        finally:
            await reader.aclose()
