"""Plumbing to drive the simulator with the unmodified twilio SDK: an httpx async client, a uvicorn thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import uvicorn
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

T = TypeVar("T")


class HttpxAsyncTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    """twilio-python's async HTTP seam over httpx, sending every SDK URL to `base_url` instead."""

    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), True, 10.0)
        self._target = urlsplit(base_url)
        self._http = httpx.AsyncClient(transport=transport)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature, passed on to httpx
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        target = urlunsplit((self._target.scheme, self._target.netloc, parts.path, parts.query, ""))
        response = await self._http.request(
            method.upper(),
            target,
            params=params or None,
            data=data or None,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)

    async def aclose(self) -> None:
        await self._http.aclose()


class ServerThread:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (where the simulator's timers live) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.loop.close()
