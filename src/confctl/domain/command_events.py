"""Events that confctl's own commands store: intents before Twilio is called, outcomes after.

A REST answer from Twilio carries no SequenceNumber; it is ordered just after the newest callback seen when
it was stored (`after_sequence`), so an older callback arriving later cannot undo it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from confctl.domain.events import DomainEvent, ParticipantFlags, register


@dataclass(frozen=True, slots=True)
class ParticipantDialRequested(DomainEvent):
    """confctl is about to dial a leg into the conference."""

    type: ClassVar[str] = "participant.dial_requested"
    label: str
    role: str
    to: str
    at: str
    mode: str = "normal"
    coach: str | None = None  # the coached agent's label
    transfer_id: str | None = None
    call_sid_to_coach: str | None = None  # and its call, as asked of Twilio (None in logs stored before)
    timeout_s: int | None = None  # the ring timeout asked of Twilio (None: Twilio's default)


@dataclass(frozen=True, slots=True)
class ParticipantDialed(DomainEvent):
    """Twilio accepted the dial and gave the leg its CallSid (and, for a coach, whom Twilio has it coach)."""

    type: ClassVar[str] = "participant.dialed"
    label: str
    call_sid: str
    at: str
    call_sid_to_coach: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantDialFailed(DomainEvent):
    """Twilio refused (or could not be reached for) the dial."""

    type: ClassVar[str] = "participant.dial_failed"
    label: str
    reason: str
    at: str
    twilio_code: int | None = None


@dataclass(frozen=True, slots=True)
class ParticipantUpdateRequested(DomainEvent):
    """confctl is about to change a live leg (hold, mute, coaching, end-on-exit)."""

    type: ClassVar[str] = "participant.update_requested"
    label: str
    call_sid: str
    changes: dict[str, object]
    at: str


@dataclass(frozen=True, slots=True)
class ParticipantUpdated(DomainEvent):
    """Twilio's answer to an update: the leg's flags as Twilio now has them."""

    type: ClassVar[str] = "participant.updated"
    label: str
    call_sid: str
    after_sequence: int
    flags: ParticipantFlags
    at: str


@dataclass(frozen=True, slots=True)
class ParticipantRemovalRequested(DomainEvent):
    """confctl asked Twilio to take a leg out (kick, or hang up a ringing leg)."""

    type: ClassVar[str] = "participant.removal_requested"
    label: str
    call_sid: str | None
    at: str


@dataclass(frozen=True, slots=True)
class CommandFailed(DomainEvent):
    """Twilio refused a request confctl made (or could not be reached); the intent before it stays stored."""

    type: ClassVar[str] = "command.failed"
    command: str
    target: str | None
    reason: str
    at: str
    twilio_code: int | None = None


@dataclass(frozen=True, slots=True)
class CommandSucceeded(DomainEvent):
    """Twilio accepted a request confctl made (kick, hang-up, end); Twilio's callbacks tell the rest."""

    type: ClassVar[str] = "command.succeeded"
    command: str
    target: str | None
    at: str


@dataclass(frozen=True, slots=True)
class ConferenceEndRequested(DomainEvent):
    """confctl asked Twilio to end the conference."""

    type: ClassVar[str] = "conference.end_requested"
    at: str


@dataclass(frozen=True, slots=True)
class RecordingUpdateRequested(DomainEvent):
    """confctl asked Twilio to pause, resume or stop the recording."""

    type: ClassVar[str] = "recording.update_requested"
    action: str
    at: str
    pause_behavior: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingUpdated(DomainEvent):
    """Twilio's answer to a recording update."""

    type: ClassVar[str] = "recording.updated"
    recording_sid: str
    status: str
    at: str


@dataclass(frozen=True, slots=True)
class ConferenceCorrected(DomainEvent):
    """`sync` found Twilio's conference in another state than ours; Twilio's is taken."""

    type: ClassVar[str] = "conference.corrected"
    conference_sid: str | None
    status: str
    at: str


@dataclass(frozen=True, slots=True)
class ParticipantCorrected(DomainEvent):
    """`sync` found a leg present or absent, or with other flags, than our state said."""

    type: ClassVar[str] = "participant.corrected"
    call_sid: str
    label: str
    present: bool
    after_sequence: int
    at: str
    flags: ParticipantFlags = field(default_factory=ParticipantFlags)


# --- transfers ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferRequested(DomainEvent):
    """A warm or cold transfer begins: the customer goes on hold and the target is dialed."""

    type: ClassVar[str] = "transfer.requested"
    transfer_id: str
    kind: str
    from_label: str
    to: str
    target_label: str
    target_role: str
    at: str
    fallback_to: str | None = None


@dataclass(frozen=True, slots=True)
class TransferConsulting(DomainEvent):
    """Warm: the target joined; the agents talk while the customer hears music."""

    type: ClassVar[str] = "transfer.consulting"
    transfer_id: str
    target_call_sid: str
    at: str
    order: tuple[int, int] | None = None  # the fact that decided it, in Twilio's order (model.SnapshotOrder)


@dataclass(frozen=True, slots=True)
class TransferFallbackDialed(DomainEvent):
    """Cold: the target failed and `fallback_to` is dialed instead."""

    type: ClassVar[str] = "transfer.fallback_dialed"
    transfer_id: str
    to: str
    target_label: str
    reason: str
    at: str
    order: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class TransferEnded(DomainEvent):
    """Base of the final transfer events.

    `order` places the fact that decided it in Twilio's order; None when a command decided it. A second final
    event with an earlier `order` revises the outcome: a fact that came first in Twilio's order arrived late.
    """

    transfer_id: str
    at: str
    reason: str | None = None
    order: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class TransferCompleted(TransferEnded):
    """The customer is with the target; `from` has left."""

    type: ClassVar[str] = "transfer.completed"


@dataclass(frozen=True, slots=True)
class TransferCancelled(TransferEnded):
    """Cancelled (by a command, or because the customer hung up); the target leg is ended."""

    type: ClassVar[str] = "transfer.cancelled"


@dataclass(frozen=True, slots=True)
class TransferFailed(TransferEnded):
    """The target could not be reached."""

    type: ClassVar[str] = "transfer.failed"


register(
    ParticipantDialRequested,
    ParticipantDialed,
    ParticipantDialFailed,
    ParticipantUpdateRequested,
    ParticipantUpdated,
    ParticipantRemovalRequested,
    CommandFailed,
    CommandSucceeded,
    ConferenceEndRequested,
    RecordingUpdateRequested,
    RecordingUpdated,
    ConferenceCorrected,
    ParticipantCorrected,
    TransferRequested,
    TransferConsulting,
    TransferFallbackDialed,
    TransferCompleted,
    TransferCancelled,
    TransferFailed,
)
