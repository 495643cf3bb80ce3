"""Twilio → confctl webhooks (API.md §2): signed form POSTs in, TwiML or 204 out.

Each webhook is one plain coroutine over a `Hook` (path, query, signature, body) that returns a `Reply`. They
are served by `WebhookFastPath`, an ASGI middleware that answers the four POSTs itself, without the
framework's per-request routing, dependency solving and exception layers: these are the hottest requests
confctl serves. The FastAPI routes below run the same coroutines; they describe the webhooks in the OpenAPI
document, and serve them too when the middleware is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson
import structlog
from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confctl.adapters.twiml import ConferenceTwiml, dial_conference
from confctl.entry import twilio_forms as forms
from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem, problem_body
from confctl.entry.metrics import count_callback
from confctl.service.callbacks import conference_id_for
from confctl.service.outage import StoreUnavailable
from confctl.service.webhook_urls import WebhookUrls

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio webhooks"])

MAX_BODY = 64 * 1024  # Twilio's callbacks are a few hundred bytes


@dataclass(frozen=True, slots=True)
class Hook:
    """One webhook request as Twilio sent it."""

    path: str
    query: str
    signature: str | None
    body: bytes

    def query_param(self, name: str) -> str | None:
        value = next((v for k, v in parse_qsl(self.query, keep_blank_values=True) if k == name), None)
        if value is not None and len(value) > forms.MAX_NAME:
            raise ApiProblem(400, "invalid_request", f"query parameter {name} is longer than confctl ever sets")
        return None if value is None else forms.storable(value)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a webhook answers."""

    status: int = 204
    body: bytes = b""
    media_type: str | None = None


NO_CONTENT = Reply()


def parse_form(body: str) -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(body, keep_blank_values=True)`, without unquoting what needs none (most of a
    Twilio callback: SIDs, numbers, booleans)."""
    pairs = []
    for part in body.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        pairs.append((name, value))
    return pairs


def signed_form(c: Container, hook: Hook) -> dict[str, str]:
    """The form of a request Twilio signed; 403 (nothing stored) when the signature is missing or wrong.

    Twilio posts `application/x-www-form-urlencoded` UTF-8: parsed here directly (a multipart parser per
    callback costs more than everything else on this path).
    """
    multi: dict[str, list[str]] = {}
    for key, value in parse_form(hook.body.decode("utf-8", "replace")):
        multi.setdefault(key, []).append(value)
    if not c.signatures.is_valid(hook.path, hook.query, multi, hook.signature):
        log.warning("twilio.signature.rejected", path=hook.path)
        raise ApiProblem(403, "invalid_signature", "X-Twilio-Signature is missing or does not match.")
    return forms.clean({key: values[0] for key, values in multi.items()})  # NUL-free once it counted as signed


async def voice_hook(c: Container, hook: Hook) -> Reply:
    """The caller goes into `room-{CallSid}`."""
    form = signed_form(c, hook)
    fact = forms.voice(form, c.clock.now(), c.settings.record)
    # None: the database did not take the fact in time; it is stored later, and the caller goes through now.
    change = await c.callbacks.inbound_call(fact)
    count_callback("voice", change)
    conference_id = conference_id_for(fact.customer_call_sid)
    urls = WebhookUrls(c.settings.public_url, c.settings.twilio_connection_overrides)
    twiml = dial_conference(
        ConferenceTwiml(
            conference_name=conference_id,
            label="customer",
            status_callback=urls.conference_status(),
            wait_url=c.settings.wait_url,
            wait_method=c.settings.wait_method,
            record=c.settings.record,
            recording_status_callback=urls.recording_status(conference_id),
        )
    )
    return Reply(200, twiml.encode(), "application/xml")


async def conference_status_hook(c: Container, hook: Hook) -> Reply:
    """A conference event (start, end, join, leave, mute, hold, modify, announcement) is stored."""
    form = signed_form(c, hook)
    callback = forms.conference_status(form, c.clock.now())
    if callback.fact is None:
        log.info("twilio.callback.ignored", event=form.get("StatusCallbackEvent"))
        return NO_CONTENT
    count_callback("conference-status", await c.callbacks.conference_event(
        callback.friendly_name, callback.fact, callback.dedupe_key, callback.sequence))
    return NO_CONTENT


async def call_status_hook(c: Container, hook: Hook) -> Reply:
    """A dialed leg's progress is stored."""
    form = signed_form(c, hook)
    fact, key = forms.call_status(form, c.clock.now(), hook.query_param("label"))
    count_callback("call-status", await c.callbacks.call_status(fact, hook.query_param("conference_id"), key))
    return NO_CONTENT


async def recording_status_hook(c: Container, hook: Hook) -> Reply:
    """A recording's status is stored."""
    form = signed_form(c, hook)
    fact, key = forms.recording_status(form, c.clock.now())
    count_callback("recording-status", await c.callbacks.recording_status(
        fact, hook.query_param("conference_id"), form.get("ConferenceSid"), key))
    return NO_CONTENT


@dataclass(frozen=True, slots=True)
class _Route:
    path: str


Handler = Callable[[Container, Hook], Awaitable[Reply]]
HOOKS: dict[str, Handler] = {
    "/twilio/voice": voice_hook,
    "/twilio/conference-status": conference_status_hook,
    "/twilio/call-status": call_status_hook,
    "/twilio/recording-status": recording_status_hook,
}
_ROUTES = {path: _Route(path) for path in HOOKS}


def _problem_reply(exc: ApiProblem, base: str) -> Reply:
    """`base`: CONFCTL_PUBLIC_URL, where the problem type's page is."""
    return Reply(exc.status, orjson.dumps(problem_body(exc.status, exc.code, exc.detail, base=base)),
                 "application/problem+json")


async def _run(handler: Handler, c: Container, hook: Hook, admit: asyncio.Semaphore | None = None) -> Reply:
    """The handler's reply; 503 when the database did not take the fact within the webhook's budget (waiting
    for admission included), so that Twilio may try again, and well before its own 15 s limit."""
    try:
        async with asyncio.timeout(c.settings.webhook_timeout_s), admit or contextlib.nullcontext():
            return await handler(c, hook)
    except ApiProblem as exc:
        return _problem_reply(exc, c.settings.public_url)
    except (StoreUnavailable, TimeoutError) as exc:
        log.warning("twilio.callback.unavailable", path=hook.path, error=str(exc) or type(exc).__name__)
        return _problem_reply(ApiProblem(503, "database_unavailable", "The database did not answer in time; "
                                         "the request is not acknowledged: deliver it again."), c.settings.public_url)


# The FastAPI routes: the OpenAPI description, and the same handlers when the fast path is not in front.

def _route_path(scope: Scope) -> str:
    """The path after the root path (`serve --root-path`, which uvicorn puts in front of every path): what
    follows CONFCTL_PUBLIC_URL in the URL Twilio signed, since the public URL ends in that prefix itself."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root + "/") else path


async def _from_request(request: Request, handler: Handler) -> Response:
    hook = Hook(_route_path(request.scope), request.url.query, request.headers.get("x-twilio-signature"),
                await request.body())
    reply = await _run(handler, request.app.state.container, hook)
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)


_FORM = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
    "schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}}
_SIGNED: dict[int | str, dict[str, Any]] = {
    403: {"description": "invalid_signature: X-Twilio-Signature missing or wrong; nothing stored"},
    400: {"description": "invalid_request: a field Twilio always sends is missing; nothing stored"},
    413: {"description": f"invalid_request: the body is over {MAX_BODY} bytes; nothing stored"},
    503: {"description": "database_unavailable: the fact was not taken in time; not acknowledged"},
}


@router.post("/voice", operation_id="twilioVoice", summary="Voice webhook: put the caller into their conference",
             response_class=Response, openapi_extra=_FORM,
             responses={200: {"content": {"application/xml": {}}, "description": "TwiML"}, **_SIGNED})
async def voice(request: Request) -> Response:
    """Answers an inbound call with `<Dial><Conference>` into `room-{CallSid}`."""
    return await _from_request(request, voice_hook)


@router.post("/conference-status", status_code=204, operation_id="twilioConferenceStatus",
             summary="Conference status callback", response_class=Response, openapi_extra=_FORM, responses=_SIGNED)
async def conference_status(request: Request) -> Response:
    """Stores a conference event (start, end, join, leave, mute, hold, modify, announcement)."""
    return await _from_request(request, conference_status_hook)


@router.post("/call-status", status_code=204, operation_id="twilioCallStatus",
             summary="Call status callback of a leg confctl dialed", response_class=Response, openapi_extra=_FORM,
             responses=_SIGNED)
async def call_status(request: Request) -> Response:
    """Stores a call's progress (initiated, ringing, answered, completed, busy, no-answer, failed, canceled)."""
    return await _from_request(request, call_status_hook)


@router.post("/recording-status", status_code=204, operation_id="twilioRecordingStatus",
             summary="Conference recording status callback", response_class=Response, openapi_extra=_FORM,
             responses=_SIGNED)
async def recording_status(request: Request) -> Response:
    """Stores a recording's status (in-progress, completed, absent, …)."""
    return await _from_request(request, recording_status_hook)


class WebhookFastPath:
    """ASGI middleware: the POSTs of HOOKS answered directly; everything else goes on to the app.

    At most `max_in_flight` webhooks are handled at once; the others wait their turn (FIFO) before any work.
    Under overload that keeps the tail short: without it every arrival starts at once and all of them share
    the process, so each takes longer (measured at 256 connections: p99 562 ms without, 173 ms with 64).
    """

    def __init__(self, app: ASGIApp, max_in_flight: int = 64) -> None:
        self.app = app
        self._admit = asyncio.Semaphore(max_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope) if scope["type"] == "http" else ""
        handler = HOOKS.get(path) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTES[path]  # what routing would have set: the metrics' route label
        body = await _read_body(receive)
        if body is None:
            reply = _problem_reply(ApiProblem(413, "invalid_request", f"a webhook body is at most {MAX_BODY} bytes"),
                                   scope["app"].state.settings.public_url)
        else:
            signature = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-twilio-signature"), None)
            hook = Hook(path, scope["query_string"].decode("latin-1"), signature, body)
            reply = await _run(handler, scope["app"].state.container, hook, self._admit)
        headers = [(b"content-length", str(len(reply.body)).encode())]
        if reply.media_type:
            headers.append((b"content-type", reply.media_type.encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; what there is fails the signature
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
