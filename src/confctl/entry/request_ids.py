"""A request id per HTTP request: the caller's `X-Request-ID` when it is sane, else a fresh one; echoed in the
answer and bound (structlog contextvars) to every log line the request causes.

Bound in the request's own task, so the server's access line (written when the answer starts), the app's
lines, and the lines of tasks the request starts (a command's Twilio requests in the outbox) all carry it.
`RequestIdApp` puts the middleware outside all others, Starlette's error handler included: a 500 carries the
header too, and so does a CORS preflight answered before the app is reached.
"""

from __future__ import annotations

import re
import uuid

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# What a load balancer or a client may send: UUIDs, hex, Heroku's and AWS's ids. Anything else (spaces, quotes,
# control characters, too long) is replaced, never echoed into our logs or headers.
SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's request id if it is sane, else a new random one (32 hex digits)."""
    for name, value in headers:
        if name == HEADER:
            given = value.decode("latin-1")
            if SANE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """ASGI middleware binding `request_id` for the request and adding `X-Request-ID` to its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id, for handlers
        header = (HEADER, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        await self.app(scope, receive, send_with_id)
        # Unbound only after a normal end: a request that raised keeps its id for the server's own report of
        # the exception. (Under uvicorn every request has a task, and so a context, of its own anyway.)
        structlog.contextvars.reset_contextvars(**tokens)


class RequestIdApp(FastAPI):
    """FastAPI with RequestIdMiddleware around its whole middleware stack."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(super().build_middleware_stack())
