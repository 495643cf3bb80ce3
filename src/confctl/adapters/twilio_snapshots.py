"""Turn twilio SDK instances (CallInstance, ParticipantInstance, ...) into the port's snapshot dataclasses.

The SDK types every field Optional; the snapshots hold what confctl relies on, with missing booleans
read as false and a missing status as "unknown" rather than crashing on a partial answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from confctl.service.gateway import (
    CallSnapshot,
    ConferenceSnapshot,
    ParticipantSnapshot,
    RecordingSnapshot,
)

T = TypeVar("T")


def participant_snapshot(p: Any) -> ParticipantSnapshot:
    """A ParticipantInstance as a ParticipantSnapshot."""
    return ParticipantSnapshot(
        call_sid=str(p.call_sid or ""),
        conference_sid=str(p.conference_sid or ""),
        label=p.label or None,
        status=str(p.status or "unknown"),
        muted=bool(p.muted),
        hold=bool(p.hold),
        coaching=bool(p.coaching),
        call_sid_to_coach=p.call_sid_to_coach or None,
        end_conference_on_exit=bool(p.end_conference_on_exit),
        start_conference_on_enter=bool(p.start_conference_on_enter),
    )


def conference_snapshot(c: Any) -> ConferenceSnapshot:
    """A ConferenceInstance as a ConferenceSnapshot."""
    return ConferenceSnapshot(
        sid=str(c.sid or ""),
        friendly_name=str(c.friendly_name or ""),
        status=str(c.status or "unknown"),
        reason_conference_ended=c.reason_conference_ended or None,
    )


def call_snapshot(c: Any) -> CallSnapshot:
    """A CallInstance as a CallSnapshot (the SDK stores `from` as `_from`)."""
    return CallSnapshot(
        sid=str(c.sid or ""),
        status=str(c.status or "unknown"),
        from_=str(c._from or ""),
        to=str(c.to or ""),
        direction=str(c.direction or ""),
    )


def recording_snapshot(r: Any) -> RecordingSnapshot:
    """A conference RecordingInstance as a RecordingSnapshot."""
    return RecordingSnapshot(
        sid=str(r.sid or ""),
        conference_sid=str(r.conference_sid or ""),
        status=str(r.status or "unknown"),
        uri=r.uri or None,
    )


def newest_first(instances: Iterable[T]) -> list[T]:
    """Sort SDK instances by `date_created`, newest first; Twilio's own order is kept among equals."""
    items = list(instances)
    oldest = datetime.min

    def created(item: T) -> datetime:
        value = getattr(item, "date_created", None)
        # Twilio dates are timezone-aware; compare naive UTC so missing dates sort last.
        return value.replace(tzinfo=None) if isinstance(value, datetime) else oldest

    return sorted(items, key=created, reverse=True)
