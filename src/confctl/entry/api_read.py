"""The read side of the control API: conferences, their history and who hears whom."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from confctl.adapters.cursor import decode_cursor
from confctl.domain import errors as de
from confctl.domain.audibility import audibility as compute_audibility
from confctl.domain.errors import ConferenceNotFound
from confctl.domain.timeline import timeline
from confctl.entry import schemas
from confctl.entry.auth import authenticate, require
from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem
from confctl.entry.pending import with_pending
from confctl.entry.settings import ApiKey
from confctl.service import history

# What each path id names, for the 404 of an id that cannot exist.
_NOT_FOUND: dict[str, type[de.DomainError]] = {
    "conference_id": de.ConferenceNotFound,
    "participant": de.ParticipantNotFound,
    "transfer_id": de.TransferNotFound,
}


async def storable_ids(request: Request, _: Annotated[ApiKey, Depends(authenticate)]) -> None:
    """404 for a path id with a NUL: PostgreSQL text cannot hold one, so no stored id has one (and a query
    with it would fail, a 500). Every other character can be in an id Twilio gave us, so only NUL is refused.
    After authentication: without a key the answer is still the 401."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            error = _NOT_FOUND.get(name, de.ConferenceNotFound)
            raise error(f"no {name.removesuffix('_id')} has a NUL in its id")


router = APIRouter(prefix="/v1", tags=["conferences"],
                   dependencies=[Depends(require("read")), Depends(storable_ids)])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Problem, "description": "No valid API key"},
    403: {"model": schemas.Problem, "description": "The API key lacks the scope"},
    503: {"model": schemas.Problem, "description": "The database is unavailable (database_unavailable)"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS, 404: {"model": schemas.Problem, "description": "conference_not_found"},
}


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


@router.get("/conferences", operation_id="listConferences", summary="List conferences, newest first",
            response_model=schemas.ConferencePage, responses={**ERRORS, 422: {"model": schemas.Problem}})
async def list_conferences(
    request: Request,
    status: Literal["init", "in-progress", "completed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Conferences, optionally of one status, paged with `next_cursor`."""
    try:
        if cursor is not None and "\x00" in decode_cursor(cursor)[1]:
            raise ValueError("a cursor with a NUL in its id")  # forged: no stored id has one (a 500 below)
        page = await _container(request).read_model.list_documents(status=status, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ApiProblem(422, "invalid_request", "cursor is not one this API returned") from exc
    return {"items": await with_pending(_container(request), [dict(d) for d in page.items]),
            "next_cursor": page.next_cursor}


async def conference_document(container: Container, conference_id: str) -> dict[str, Any]:
    """The projected conference, or 404."""
    document = await container.read_model.get_document(conference_id)
    if document is None:
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    return dict(document)


@router.get("/conferences/{conference_id}", operation_id="getConference", summary="Get one conference",
            response_model=schemas.Conference, responses=NOT_FOUND)
async def get_conference(request: Request, conference_id: str) -> dict[str, Any]:
    """The conference, its participants, transfers and recording, and the Twilio requests still pending."""
    container = _container(request)
    return (await with_pending(container, [await conference_document(container, conference_id)]))[0]


@router.get("/conferences/{conference_id}/events", operation_id="listConferenceEvents",
            summary="A conference's full history, oldest first", response_model=schemas.EventPage,
            responses=NOT_FOUND)
async def list_events(
    request: Request,
    conference_id: str,
    after: Annotated[int, Query(ge=0, le=schemas.INT64_MAX, description="Return events with version > after.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Every stored event of the conference; page with `next_after`."""
    container = _container(request)
    stored = await container.store.read_stream(conference_id, after_version=after, limit=limit + 1)
    if not stored and after == 0:
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    page = stored[:limit]
    items = [
        {
            "position": e.position,
            "version": e.version,
            "type": e.type,
            "at": e.recorded_at.isoformat(),
            "actor": e.metadata.get("actor"),
            "data": dict(e.data),
        }
        for e in page
    ]
    return {"items": items, "next_after": page[-1].version if len(stored) > limit else None}


# RFC 3339's date-time (section 5.6), offset required; `datetime.fromisoformat` then checks the ranges.
_RFC3339 = re.compile(
    r"([0-9]{4})-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:([0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII)
# Eighteen digits are enough for any version (and stay below the bigint column's bound).
VERSION_PATTERN = r"^[0-9]{1,18}$"
AT_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
AT_DESCRIPTION = (
    "Who heard whom then, folded from the log: a conference version (an integer: the events with version <= at) "
    "or an RFC 3339 date-time with an offset (the events stored at or before it, as `at` in the events). Beyond "
    "the last event: the latest state; before the first: 404 conference_not_found (the conference did not exist "
    "yet). Anything else is 422 invalid_request. Without it: now.")


def parse_at(at: str) -> tuple[int | None, datetime | None]:
    """(version, None) or (None, time) of an `at`; ValueError for anything else."""
    if re.fullmatch(VERSION_PATTERN, at, re.ASCII):
        return int(at), None
    text = at.upper()
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("neither a version nor an RFC 3339 date-time with an offset")
    if match[1] == "0000":
        return None, datetime.min.replace(tzinfo=UTC)  # RFC 3339 has a year 0, Python not: before any event
    if match[2] == "60":
        # A leap second (RFC 3339 allows one): the last instant of the minute before it ends.
        text = f"{text[:match.start(2)]}59.999999{text[match.end(3) if match[3] else match.end(2):]}"
    return None, datetime.fromisoformat(text)


@router.get("/conferences/{conference_id}/audibility", operation_id="getAudibility",
            summary="Who hears whom, now or at a past version or time", response_model=schemas.Audibility,
            responses={**NOT_FOUND, 422: {"model": schemas.Problem, "description": "A bad `at` (invalid_request)"}})
async def get_audibility(
    request: Request,
    conference_id: str,
    at: Annotated[str | None, Query(description=AT_DESCRIPTION, json_schema_extra={"anyOf": [
        {"type": "string", "pattern": VERSION_PATTERN},
        {"type": "string", "format": "date-time", "pattern": AT_PATTERN},
    ]}, openapi_examples={
        "version": {"summary": "A conference version", "value": "42"},
        "time": {"summary": "An RFC 3339 date-time", "value": "2024-05-01T12:00:00.123456+00:00"},
    })] = None,
) -> dict[str, Any]:
    """For each participant in the conference, whom it hears; and who hears hold or wait music."""
    container = _container(request)
    if at is None:
        state = await container.conferences.load(conference_id)
    else:
        try:
            version, until = parse_at(at)
        except ValueError as exc:
            raise ApiProblem(422, "invalid_request", f"at: {exc}") from exc
        state = await history.state_at(container.store, conference_id, version=version, until=until)
        if not state.exists and await container.store.read_stream(conference_id, limit=1):
            raise ConferenceNotFound(f"conference {conference_id!r} did not exist yet at {at}")
    if not state.exists:
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    result = compute_audibility(state)
    return {"hears": result.hears, "music": result.music}


@router.get("/conferences/{conference_id}/timeline", operation_id="getTimeline",
            summary="Per participant, when it rang, was in, held, muted, coached, monitored or barged",
            response_model=schemas.Timeline, response_model_by_alias=True, responses=NOT_FOUND)
async def get_timeline(request: Request, conference_id: str) -> dict[str, Any]:
    """Each participant's intervals, folded from the whole log: the same states `audibility?at=` answers from."""
    placed = await history.steps(_container(request).store, conference_id)
    if not placed:
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    participants = [
        {"label": p.label, "role": p.role, "call_sid": p.call_sid, "intervals": [
            {"kind": i.kind, "from": i.from_, "to": i.to, "from_version": i.from_version, "to_version": i.to_version,
             "actor": i.actor, "ended_by": i.ended_by, "with": i.with_}
            for i in p.intervals]}
        for p in timeline(placed)
    ]
    return {"conference_id": conference_id, "version": placed[-1].version, "participants": participants}
