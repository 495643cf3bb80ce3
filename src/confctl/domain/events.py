"""Domain events: past-tense facts about one conference, with stable dotted type strings.

Every event is a frozen dataclass of JSON-friendly fields. `EVENT_TYPES` maps each stored `type` string
to its class, so the log never depends on Python class paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Base of every event; `type` is the stable name stored in the log."""

    type: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class ParticipantFlags:
    """Twilio's view of a participant, as carried by every participant callback and REST resource."""

    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None  # REST resources only: a callback never says whom (domain/coaching.py)
    end_conference_on_exit: bool = False
    start_conference_on_enter: bool = True


# --- facts from Twilio callbacks -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConferenceCreated(DomainEvent):
    """An inbound call reached the voice webhook and was sent into its conference."""

    type: ClassVar[str] = "conference.created"
    customer_call_sid: str
    caller: str
    called: str
    record: bool
    at: str


@dataclass(frozen=True, slots=True)
class ConferenceStarted(DomainEvent):
    """Twilio started mixing audio (`conference-start`)."""

    type: ClassVar[str] = "conference.started"
    conference_sid: str
    sequence: int
    at: str


@dataclass(frozen=True, slots=True)
class ConferenceEnded(DomainEvent):
    """Twilio ended the conference (`conference-end`)."""

    type: ClassVar[str] = "conference.ended"
    conference_sid: str
    sequence: int
    at: str
    reason: str | None
    ended_by_call_sid: str | None = None
    ended_by_label: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantSeen(DomainEvent):
    """Base of the participant callbacks: each carries Twilio's full snapshot of the participant."""

    conference_sid: str
    call_sid: str
    label: str | None
    sequence: int
    at: str
    flags: ParticipantFlags


@dataclass(frozen=True, slots=True)
class ParticipantJoined(ParticipantSeen):
    """`participant-join`."""

    type: ClassVar[str] = "participant.joined"


@dataclass(frozen=True, slots=True)
class ParticipantLeft(ParticipantSeen):
    """`participant-leave`, with Twilio's reason and the call's status when it left."""

    type: ClassVar[str] = "participant.left"
    reason: str | None = None
    call_status: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantMuted(ParticipantSeen):
    """`participant-mute`."""

    type: ClassVar[str] = "participant.muted"


@dataclass(frozen=True, slots=True)
class ParticipantUnmuted(ParticipantSeen):
    """`participant-unmute`."""

    type: ClassVar[str] = "participant.unmuted"


@dataclass(frozen=True, slots=True)
class ParticipantHeld(ParticipantSeen):
    """`participant-hold`."""

    type: ClassVar[str] = "participant.held"


@dataclass(frozen=True, slots=True)
class ParticipantUnheld(ParticipantSeen):
    """`participant-unhold`."""

    type: ClassVar[str] = "participant.unheld"


@dataclass(frozen=True, slots=True)
class ParticipantModified(ParticipantSeen):
    """`participant-modify` (coaching, end-on-exit, … changed)."""

    type: ClassVar[str] = "participant.modified"


@dataclass(frozen=True, slots=True)
class CallStatusChanged(DomainEvent):
    """A call status callback for a leg confctl dialed."""

    type: ClassVar[str] = "call.status_changed"
    call_sid: str
    status: str
    sequence: int
    at: str
    sip_response_code: int | None = None
    label: str | None = None  # from the callback URL confctl gave: a status may arrive before the dial's answer


@dataclass(frozen=True, slots=True)
class RecordingStatusChanged(DomainEvent):
    """A conference recording status callback."""

    type: ClassVar[str] = "recording.status_changed"
    recording_sid: str
    status: str
    url: str | None
    at: str


EVENT_TYPES: dict[str, type[DomainEvent]] = {}


def register(*classes: type[DomainEvent]) -> None:
    """Make event classes decodable by their `type` string."""
    for cls in classes:
        if cls.type in EVENT_TYPES and EVENT_TYPES[cls.type] is not cls:
            raise ValueError(f"event type {cls.type!r} registered twice")
        EVENT_TYPES[cls.type] = cls


register(
    ConferenceCreated,
    ConferenceStarted,
    ConferenceEnded,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    ParticipantUnmuted,
    ParticipantHeld,
    ParticipantUnheld,
    ParticipantModified,
    CallStatusChanged,
    RecordingStatusChanged,
)
