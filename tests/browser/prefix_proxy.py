"""A reverse proxy that serves confctl under a path prefix and strips it, as an operator's nginx or ingress does
(`location /confctl/ { proxy_pass http://confctl/; }`): the browser asks for `/confctl/console`, confctl (run with
`serve --root-path /confctl`) gets `/console`. Plain HTTP/1.1 at the byte level, keep-alive included; answers
(event streams too) are passed through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib


class PrefixProxy:
    """Listens on 127.0.0.1 (a free port); forwards to `upstream` (`http://host:port`) with `prefix` stripped from
    each request's target. A target outside the prefix is answered 404 by the proxy itself."""

    def __init__(self, upstream: str, prefix: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self.prefix = prefix.rstrip("/")
        self._server: asyncio.Server | None = None
        self.outside: list[str] = []  # targets asked for outside the prefix (a page that forgot it)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}{self.prefix}"

    async def start(self) -> PrefixProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        back = asyncio.create_task(self._pipe(up_reader, writer))
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, rest = head.split(b"\r\n", 1)
                method, target, version = first.decode("latin-1").split(" ", 2)
                length = next((int(line.split(b":", 1)[1]) for line in rest.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length) if length else b""
                if target != self.prefix and not target.startswith(self.prefix + "/"):
                    self.outside.append(target)
                    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                stripped = target[len(self.prefix):] or "/"
                up_writer.write(f"{method} {stripped} {version}\r\n".encode("latin-1") + rest + body)
                await up_writer.drain()
        up_writer.close()
        back.cancel()
        with contextlib.suppress(BaseException):
            await back
        writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
