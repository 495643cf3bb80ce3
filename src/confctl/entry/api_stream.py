"""Live updates (API.md §3): the event store as Server-Sent Events, per conference and for every conference.

Each message is one stored event: `id` is the conference version (per-conference feed) or the global position
(all conferences), `event` the event type, `data` the event as `/events` shows it plus its conference. A
client resumes from `Last-Event-ID` (what EventSource sends when it reconnects) or `?after=`: the feed re-reads
the store after that id, so nothing is skipped or repeated. The global feed can rely on positions: they are
transaction-ordered and read only below the oldest running transaction (see `pg_store.READ_ALL_SQL`), so
none can appear later behind one already read.

A connection lives at most CONFCTL_SSE_MAX_S (as polar's feed does: no stream outlives a deploy forever);
the server then closes it and the client reconnects after the `retry:` hint with its Last-Event-ID.
A heartbeat comment every CONFCTL_SSE_HEARTBEAT_S keeps proxies from closing an idle stream.

A browser's EventSource cannot send `Authorization`: these endpoints, and no others, also take a browser token
(POST /v1/tokens) as `?access_token=`, checked when the stream opens; an API key there is refused (entry/auth.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BeforeValidator, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from confctl.domain.errors import ConferenceNotFound
from confctl.entry import schemas
from confctl.entry.api_read import storable_ids
from confctl.entry.auth import authenticate_stream, require_on_stream
from confctl.entry.container import Container
from confctl.entry.metrics import SSE_SUBSCRIBERS
from confctl.entry.settings import ApiKey
from confctl.service.live import follow
from confctl.service.ports import StoredEvent


async def _stream_ids(request: Request, key: Annotated[ApiKey, Depends(authenticate_stream)]) -> None:
    """storable_ids, after the SSE endpoints' own authentication (which also takes `?access_token=`)."""
    await storable_ids(request, key)


# EventSource cannot send headers: these endpoints alone also take a browser token as `?access_token=`.
router = APIRouter(prefix="/v1", tags=["live updates"],
                   dependencies=[Depends(require_on_stream("read")), Depends(_stream_ids)])

# How long EventSource waits before reconnecting after the server closed the stream.
RETRY_MS = 1000


class EventStream(EventSourceResponse):
    """sse-starlette's response, with its media type on the class, where FastAPI's OpenAPI looks for it."""

    media_type = "text/event-stream"


class LiveEvent(schemas.Event):
    """The `data` of one SSE message: a stored event (as in `/events`) and its conference."""

    conference_id: str = Field(examples=["room-CA0123456789abcdef0123456789abcdef"])


def _stream_doc(id_meaning: str, *, per_conference: bool) -> dict[int | str, dict[str, Any]]:
    not_found: dict[int | str, dict[str, Any]] = (
        {404: {"model": schemas.Problem, "description": "conference_not_found"}} if per_conference else {}
    )
    return {
        200: {
            # OpenAPI 3.1 has no way to describe the items of a stream (3.2's `itemSchema`, which 3.1 validators and
            # generators refuse): the body is a string, and `x-sse-data` points at the schema of each message's
            # `data`, LiveEvent (which the route's response_model keeps in the components, for generators).
            "content": {"text/event-stream": {
                "schema": {"type": "string", "description": (
                    "Server-Sent Events (text/event-stream): messages of `id`, `event` and `data` lines, the `data` "
                    "of each a LiveEvent as JSON (#/components/schemas/LiveEvent); `retry:` hints and `:` comments "
                    "(heartbeats) besides.")},
                "x-sse-data": {"$ref": "#/components/schemas/LiveEvent"},
            }},
            "description": (
                f"`text/event-stream`: one message per stored event, `id` = {id_meaning}, `event` = the event "
                "type, `data` = a LiveEvent as JSON; the first message is a `retry:` hint. Comments (`:`) are "
                "heartbeats. The server closes the stream after CONFCTL_SSE_MAX_S; reconnect with `Last-Event-ID`."
            ),
        },
        401: {"model": schemas.Problem,
              "description": "No valid API key or browser token; an expired token; an API key in access_token"},
        403: {"model": schemas.Problem, "description": "The API key or token lacks the read scope"},
        **not_found,
        422: {"model": schemas.Problem,
              "description": "Last-Event-ID or after is not an id this stream sends (ASCII digits, at most 2^63-1)"},
    }


def _resume_after(last_event_id: int | None, after: int | None) -> int:
    """Where to resume: Last-Event-ID wins, because EventSource resends the original URL (with its ?after=)."""
    return last_event_id if last_event_id is not None else after or 0


def _event_id(value: object) -> object:
    """Last-Event-ID as sent: plain ASCII digits (what this stream sends as ids), else a validation error (422).

    An id this stream cannot have sent (not plain digits, or beyond the int64 of versions and positions) is a
    422 problem, answered before the stream opens. EventSource does not reconnect after a non-200 answer (it
    "fails the connection"), so the client learns of it once. Opening the stream and failing in it instead
    would make the browser reconnect with the same id forever; resuming "from the start" would replay the
    whole log to it on every such reconnect and hide a client bug.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None  # as if not sent (EventSource sends none before it has seen an id)
        # Not int()'s reading: it also takes "+5", "1_0" and digits other than ASCII, none of them ids of ours.
        if not (text.isascii() and text.isdigit()):
            raise ValueError("Last-Event-ID must be an id this stream sent")
        return text
    return value


# The JSON of recent events, by (position, stream, version): every follower of an event sends the same text.
_DATA: OrderedDict[tuple[int, str, int], str] = OrderedDict()
_DATA_SIZE = 4096


def _data(event: StoredEvent) -> str:
    """The message data of an event, encoded once for all its followers."""
    key = (event.position, event.stream_id, event.version)
    cached = _DATA.get(key)
    if cached is not None:
        return cached
    body = {
        "position": event.position,
        "version": event.version,
        "conference_id": event.stream_id,
        "type": event.type,
        "at": event.recorded_at.isoformat(),
        "actor": event.metadata.get("actor"),
        "data": dict(event.data),
    }
    encoded = orjson.dumps(body).decode()
    _DATA[key] = encoded
    if len(_DATA) > _DATA_SIZE:
        _DATA.popitem(last=False)
    return encoded


def _message(event: StoredEvent, event_id: int) -> ServerSentEvent:
    return ServerSentEvent(data=_data(event), event=event.type, id=str(event_id))


def _response(container: Container, *, stream_id: str | None, after: int) -> EventStream:
    settings = container.settings
    feed = "all" if stream_id is None else "conference"

    async def messages() -> AsyncIterator[ServerSentEvent]:
        SSE_SUBSCRIBERS.labels(feed=feed).inc()
        try:
            yield ServerSentEvent(retry=RETRY_MS)
            events = follow(container.feed, container.live, stream_id=stream_id, after=after,
                            poll_s=settings.sse_poll_s, lifetime_s=settings.sse_max_s)
            try:
                async for event in events:
                    yield _message(event, event.position if stream_id is None else event.version)
            finally:
                await events.aclose()
        finally:
            SSE_SUBSCRIBERS.labels(feed=feed).dec()

    return EventStream(messages(), ping=settings.sse_heartbeat_s, sep="\n")


LastEventId = Annotated[Annotated[int, Field(ge=0, le=schemas.INT64_MAX)] | None, BeforeValidator(_event_id),
                        Header(alias="Last-Event-ID", description="Resume after this id (empty: as if not sent).")]


@router.get("/conferences/{conference_id}/stream", operation_id="streamConferenceEvents",
            summary="Live events of one conference (SSE)", response_class=EventStream, response_model=LiveEvent,
            responses=_stream_doc("the conference version", per_conference=True))
async def stream_conference(
    request: Request,
    conference_id: str,
    last_event_id: LastEventId = None,
    after: Annotated[int | None, Query(ge=0, le=schemas.INT64_MAX,
                                       description="Start after this version (Last-Event-ID wins).")] = None,
) -> EventStream:
    """Every stored event of the conference after `after` / `Last-Event-ID`, then each new one as it is stored."""
    container: Container = request.app.state.container
    start = _resume_after(last_event_id, after)
    if not await container.store.read_stream(conference_id, limit=1):
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    return _response(container, stream_id=conference_id, after=start)


@router.get("/stream", operation_id="streamAllEvents", summary="Live events of every conference (SSE)",
            response_class=EventStream, response_model=LiveEvent,
            responses=_stream_doc("the global position", per_conference=False))
async def stream_all(
    request: Request,
    last_event_id: LastEventId = None,
    after: Annotated[int | None, Query(ge=0, le=schemas.INT64_MAX,
                                       description="Start after this position (Last-Event-ID wins).")] = None,
) -> EventStream:
    """Every stored event after `after` / `Last-Event-ID` in global order, then each new one as it is stored."""
    container: Container = request.app.state.container
    return _response(container, stream_id=None, after=_resume_after(last_event_id, after))
