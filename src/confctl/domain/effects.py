"""Plans: what a decision stores (events) and what it then asks of Twilio (effects), in that order.

Effects are pure descriptions; the service performs them one by one and stores each outcome as an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from confctl.domain.events import DomainEvent


@dataclass(frozen=True, slots=True)
class Dial:
    """Dial a new leg into the conference (Twilio CreateParticipant)."""

    label: str
    to: str
    role: str
    timeout_s: int | None = None
    muted: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    end_conference_on_exit: bool = False
    transfer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """Change a live leg; None leaves a flag as it is."""

    label: str
    call_sid: str
    hold: bool | None = None
    hold_url: str | None = None
    muted: bool | None = None
    coaching: bool | None = None
    call_sid_to_coach: str | None = None
    end_conference_on_exit: bool | None = None


@dataclass(frozen=True, slots=True)
class Kick:
    """Take a joined leg out of the conference (participant DELETE)."""

    label: str
    call_sid: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """End a call whatever its state (cancels a ringing leg)."""

    label: str
    call_sid: str


@dataclass(frozen=True, slots=True)
class EndConference:
    """End the conference: every leg leaves."""


@dataclass(frozen=True, slots=True)
class UpdateRecording:
    """Pause, resume or stop the conference recording."""

    recording_sid: str
    status: str
    pause_behavior: str | None = None


@dataclass(frozen=True, slots=True)
class Announce:
    """Play `url` to one joined leg (UpdateParticipant AnnounceUrl) or, with no leg, to the whole conference."""

    url: str
    label: str | None = None
    call_sid: str | None = None


Effect = Dial | Update | Kick | HangUp | EndConference | UpdateRecording | Announce


@dataclass(frozen=True, slots=True)
class Plan:
    """Events to store now, then effects to perform in order; `transfer_id` fails that transfer if one fails."""

    events: list[DomainEvent] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    transfer_id: str | None = None

    def __add__(self, other: Plan) -> Plan:
        return Plan(
            events=[*self.events, *other.events],
            effects=[*self.effects, *other.effects],
            transfer_id=self.transfer_id or other.transfer_id,
        )


# Stable kinds of the outbox rows (never rename: rows written by one version are run by the next).
EFFECT_KINDS: dict[str, type[Effect]] = {
    "dial": Dial,
    "update_participant": Update,
    "kick": Kick,
    "hang_up": HangUp,
    "end_conference": EndConference,
    "update_recording": UpdateRecording,
    "announce": Announce,
}
_KIND_OF = {cls: kind for kind, cls in EFFECT_KINDS.items()}


def kind_of(effect: Effect) -> str:
    """The stable kind of an effect."""
    return _KIND_OF[type(effect)]


def encode_effect(effect: Effect) -> tuple[str, dict[str, object]]:
    """(kind, payload) of an effect, JSON-ready."""
    return kind_of(effect), asdict(effect)


def decode_effect(kind: str, payload: Mapping[str, object]) -> Effect:
    """The effect stored as (kind, payload); fields it does not know are ignored."""
    cls = EFFECT_KINDS[kind]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in payload.items() if k in names})  # type: ignore[arg-type]
