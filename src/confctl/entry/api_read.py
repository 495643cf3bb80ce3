"""The read side of the control API: conferences, their history and who hears whom."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from confctl.domain.audibility import audibility as compute_audibility
from confctl.domain.errors import ConferenceNotFound
from confctl.entry import schemas
from confctl.entry.auth import require
from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem

router = APIRouter(prefix="/v1", tags=["conferences"], dependencies=[Depends(require("read"))])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Problem, "description": "No valid API key"},
    403: {"model": schemas.Problem, "description": "The API key lacks the scope"},
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
        page = await _container(request).read_model.list_documents(status=status, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ApiProblem(422, "invalid_request", "cursor is not one this API returned") from exc
    return {"items": list(page.items), "next_cursor": page.next_cursor}


async def conference_document(container: Container, conference_id: str) -> dict[str, Any]:
    """The projected conference, or 404."""
    document = await container.read_model.get_document(conference_id)
    if document is None:
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    return dict(document)


@router.get("/conferences/{conference_id}", operation_id="getConference", summary="Get one conference",
            response_model=schemas.Conference, responses=NOT_FOUND)
async def get_conference(request: Request, conference_id: str) -> dict[str, Any]:
    """The conference, its participants, transfers and recording."""
    return await conference_document(_container(request), conference_id)


@router.get("/conferences/{conference_id}/events", operation_id="listConferenceEvents",
            summary="A conference's full history, oldest first", response_model=schemas.EventPage,
            responses=NOT_FOUND)
async def list_events(
    request: Request,
    conference_id: str,
    after: Annotated[int, Query(ge=0, description="Return events with version > after.")] = 0,
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


@router.get("/conferences/{conference_id}/audibility", operation_id="getAudibility",
            summary="Who hears whom right now", response_model=schemas.Audibility, responses=NOT_FOUND)
async def get_audibility(request: Request, conference_id: str) -> dict[str, Any]:
    """For each participant in the conference, whom it hears; and who hears hold or wait music."""
    container = _container(request)
    state = await container.conferences.load(conference_id)
    if not state.exists:
        raise ConferenceNotFound(f"no conference {conference_id!r}")
    result = compute_audibility(state)
    return {"hears": result.hears, "music": result.music}
