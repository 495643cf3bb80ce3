"""The read model: a conference's state as the API document, and the whole projection rebuilt from the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confctl.domain.codec import decode
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference, Participant, Transfer
from confctl.service.ports import ReadModelRow, StoredEvent


def participant_document(conference: Conference, p: Participant) -> dict[str, Any]:
    """API.md §4 `Participant`."""
    coached = conference.by_call_sid(p.call_sid_to_coach) if p.coaching else None
    coach = coached.label if coached else (p.requested_coach if p.mode == "coach" else None)
    return {
        "label": p.label,
        "call_sid": p.call_sid,
        "role": p.role,
        "status": p.status,
        "muted": p.muted,
        "hold": p.hold,
        "coaching": p.coaching,
        "coach": coach,
        "mode": p.mode,
        "joined_at": p.joined_at,
        "left_at": p.left_at,
        "leave_reason": p.leave_reason,
    }


def transfer_document(conference: Conference, t: Transfer) -> dict[str, Any]:
    """API.md §4 `Transfer`."""
    target = conference.find(t.target_label)
    return {
        "id": t.id,
        "conference_id": conference.id,
        "kind": t.kind,
        "state": t.state,
        "from": t.from_label,
        "to": t.to,
        "target_label": t.target_label,
        "target_call_sid": t.target_call_sid or (target.call_sid if target else None),
        "created_at": t.created_at,
        "ended_at": t.ended_at,
        "failure_reason": t.failure_reason,
    }


def recording_document(conference: Conference) -> dict[str, Any] | None:
    """API.md §4 `Recording`, or None when the conference has never been recorded."""
    r = conference.recording
    if r is None:
        return None
    return {"sid": r.sid, "status": r.status, "url": r.url}


def conference_document(conference: Conference) -> dict[str, Any]:
    """API.md §4 `Conference`."""
    customer = conference.customer
    return {
        "id": conference.id,
        "twilio_sid": conference.twilio_sid,
        "status": conference.status,
        "created_at": conference.created_at,
        "started_at": conference.started_at,
        "ended_at": conference.ended_at,
        "end_reason": conference.end_reason,
        "customer": {"call_sid": customer.call_sid, "from": customer.caller, "to": customer.called}
        if customer
        else None,
        "participants": [participant_document(conference, p) for p in conference.ordered_participants()],
        "transfers": [transfer_document(conference, t) for t in conference.transfers],
        "recording": recording_document(conference),
        "version": conference.version,
    }


def _parse_time(value: str | None) -> datetime:
    # A stream with no dated fact yet sorts last; never "now", so a rebuild gives the same answer.
    return datetime.fromisoformat(value) if value else datetime(1970, 1, 1, tzinfo=UTC)


def read_model_row(conference: Conference, known: Conference | None = None) -> ReadModelRow:
    """The row that stores `conference` in the read model; `known`, the state already stored, tells which call
    legs the call index lacks (so an append indexes only those)."""
    call_sids = [p.call_sid for p in conference.participants if p.call_sid]
    indexed = {p.call_sid for p in known.participants if p.call_sid} if known is not None else None
    return ReadModelRow(
        stream_id=conference.id,
        status=conference.status,
        created_at=_parse_time(conference.created_at),
        version=conference.version,
        document=conference_document(conference),
        twilio_sid=conference.twilio_sid,
        call_sids=call_sids,
        new_call_sids=None if indexed is None else [sid for sid in call_sids if sid not in indexed],
    )


def project_all(events: Sequence[StoredEvent]) -> list[ReadModelRow]:
    """The read model of the streams whose events these are (`confctl rebuild-projections`).

    Events of one stream in version order; streams in any order or interleaved (the whole log in global
    order will do, and so will a rebuild's chunk of whole streams).
    """
    states: dict[str, Conference] = {}
    for stored in events:
        state = states.get(stored.stream_id) or Conference(id=stored.stream_id)
        states[stored.stream_id] = evolve(state, decode(stored.type, stored.data))
    return [read_model_row(s) for s in states.values()]
