"""A TCP forwarder between a browser and confctl, in the test's event loop: the network that fails.

It passes bytes both ways untouched and reads along: the head of every HTTP request (method, target, headers:
the browser speaks plaintext HTTP/1.1 to it) and the `id:` lines of the event streams it carries. A test can
sever every connection and refuse new ones for a while (`sever` / `restore`: a network drop), or hold back what
confctl sends on the event streams while everything else flows (`pause_streams` / `resume_streams`: events that
are late).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

STREAM_PATH = "/v1/stream"
_ID_LINE = re.compile(r"^id: ?(\d+)\r?$")


@dataclass
class Head:
    """One request's head, as the browser sent it (header names in lower case)."""

    connection: int
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class _Connection:
    number: int
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    stream: bool = False  # this connection carries an event stream (from its stream request on)
    lose_answer: bool = False  # confctl's answer to the request on it is lost: the connection is reset
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Wire:
    """Listens on 127.0.0.1 (a free port) and forwards each connection to `upstream` (`http://host:port`)."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self._server: asyncio.Server | None = None
        self._connections: dict[int, _Connection] = {}
        self._count = 0
        self.refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.heads: list[Head] = []
        self.stream_ids: list[int] = []  # every event id sent to the browser, in order
        self.refused = 0  # connections refused while severed
        self._lose: set[str] = set()  # methods whose next request's answer is to be lost
        self.blocked: tuple[str, ...] = ()  # request targets starting so are reset before they reach confctl

    @property
    def url(self) -> str:
        assert self._server is not None, "the wire is not started"
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> Wire:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_all()
        if self._server is not None:
            await self._server.wait_closed()

    def streams(self) -> list[Head]:
        """The heads of the event-stream requests, oldest first."""
        return [h for h in self.heads if h.target.startswith(STREAM_PATH)]

    def actions(self) -> list[Head]:
        """The heads of every request that is not a GET (what the page asks confctl to do)."""
        return [h for h in self.heads if h.method not in ("GET", "HEAD", "OPTIONS")]

    def sever(self) -> None:
        """The network drops: every connection reset at once, and new ones refused until `restore`."""
        self.refusing = True
        self._drop_all()

    def restore(self) -> None:
        self.refusing = False

    def pause_streams(self) -> None:
        """Hold back what confctl sends on event streams (the browser's requests and other answers flow)."""
        self._flowing.clear()

    def resume_streams(self) -> None:
        self._flowing.set()

    def block(self, *prefixes: str) -> None:
        """Reset every request whose target starts with one of `prefixes` before it reaches confctl (none: stop)."""
        self.blocked = prefixes

    def lose_next_answer(self, method: str) -> None:
        """The next `method` request reaches confctl, and its answer is lost: the connection is reset instead.

        The idle keep-alive connections are closed first, so the request goes on a new one: a request lost on a
        reused connection chromium sends again by itself, and the page would never know.
        """
        self._lose.add(method)
        for connection in list(self._connections.values()):
            if not connection.stream:
                self._drop(connection)

    def _drop_all(self) -> None:
        for connection in list(self._connections.values()):
            self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        self._connections.pop(connection.number, None)
        for writer in (connection.client, connection.upstream):
            if writer is not None:
                writer.transport.abort()  # a reset, as when a link goes down, not a polite close
        for task in connection.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            self.refused += 1
            writer.transport.abort()
            return
        self._count += 1
        connection = _Connection(self._count, writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        connection.upstream = up_writer
        self._connections[connection.number] = connection
        connection.tasks = [asyncio.create_task(self._to_upstream(connection, reader, up_writer)),
                            asyncio.create_task(self._to_client(connection, up_reader, writer))]
        await asyncio.wait(connection.tasks, return_when=asyncio.FIRST_COMPLETED)
        self._drop(connection)
        await asyncio.gather(*connection.tasks, return_exceptions=True)

    async def _to_upstream(self, connection: _Connection, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        buffer, body_left = b"", 0
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                buffer += data
                # Read the heads along: a request's body (Content-Length; browsers send no chunked requests)
                # is skipped, then the next head on this keep-alive connection.
                while True:
                    if body_left:
                        taken = min(body_left, len(buffer))
                        buffer, body_left = buffer[taken:], body_left - taken
                        if body_left:
                            break
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head, buffer = self._head(connection, buffer[:end].decode("latin-1")), buffer[end + 4:]
                    body_left = int(head.headers.get("content-length", "0"))
                    if self.blocked and head.target.startswith(self.blocked):
                        self._drop(connection)
                        return
                writer.write(data)
                await writer.drain()

    def _head(self, connection: _Connection, text: str) -> Head:
        first, *lines = text.split("\r\n")
        method, target, _ = first.split(" ", 2)
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        head = Head(connection.number, method, target, headers)
        self.heads.append(head)
        if target.startswith(STREAM_PATH):
            connection.stream = True
        if method in self._lose:
            self._lose.discard(method)
            connection.lose_answer = True
        return head

    async def _to_client(self, connection: _Connection, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        partial = ""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if connection.lose_answer:
                    self._drop(connection)
                    return
                if connection.stream:
                    await self._flowing.wait()
                    *lines, partial = (partial + data.decode("latin-1")).split("\n")
                    self.stream_ids += [int(m[1]) for line in lines if (m := _ID_LINE.match(line))]
                writer.write(data)
                await writer.drain()
