"""Conference and participant state: what the log folds into, and the values derived from it.

State is derived from flags that each fact only ever adds to (joined, left, failed, the newest snapshot
by Twilio's SequenceNumber), so folding the same facts in any order yields the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["customer", "agent", "supervisor", "external"]
Mode = Literal["normal", "monitor", "coach", "barge"]
ParticipantStatus = Literal["dialing", "ringing", "joined", "left", "failed"]
ConferenceStatus = Literal["init", "in-progress", "completed"]
TransferKind = Literal["warm", "cold"]
TransferState = Literal["dialing", "consulting", "completed", "cancelled", "failed"]

CUSTOMER_LABEL = "customer"
FAILED_CALL_STATUSES = frozenset({"busy", "no-answer", "failed", "canceled"})
# Twilio's snapshots are ordered by SequenceNumber; a REST answer stored by a command is ordered just after
# the newest callback seen when it was stored: (sequence, 0) for callbacks, (sequence, 1) for REST answers.
# REST answers of one order are ordered by the log: the one stored later wins.
# The same pairs place facts in Twilio's order (joins, leaves, the end); (sequence, -1) is "just before that
# callback": the join a participant-leave implies.
SnapshotOrder = tuple[int, int]
NO_SNAPSHOT: SnapshotOrder = (-1, 0)
# Conference SequenceNumbers not seen below the highest one seen, as inclusive ranges in ascending order
# (domain/lost_callbacks.py): a callback lost, or one still on its way.
SequenceGaps = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Customer:
    """The inbound caller whose call created the conference."""

    call_sid: str
    caller: str
    called: str


@dataclass(frozen=True, slots=True)
class Participant:
    """One leg of the conference, from first sight (dial or callback) to its end."""

    label: str
    role: Role
    call_sid: str | None = None
    to: str | None = None
    requested_mode: Mode = "normal"
    requested_coach: str | None = None
    transfer_id: str | None = None  # the transfer this leg was dialed for, if any
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    # Whom it whispers to while `coaching`: from confctl's requests and Twilio's REST resources, never from a
    # callback (Twilio's carry `Coaching` only); see domain/coaching.py.
    call_sid_to_coach: str | None = None
    coach_unconfirmed_after: int | None = None
    end_conference_on_exit: bool = False
    snapshot_order: SnapshotOrder = NO_SNAPSHOT
    first_seen_at: str | None = None
    ringing: bool = False
    joined_at: str | None = None
    left_at: str | None = None
    joined_order: SnapshotOrder | None = None  # where its join is in Twilio's order, once a callback placed it
    left_order: SnapshotOrder | None = None  # where its leave is (a leave known from a call status has none)
    leave_reason: str | None = None
    final_call_status: str | None = None
    dial_error: str | None = None
    start_conference_on_enter: bool = True  # as Twilio last reported it (every leg confctl makes has it)
    timeout_s: int | None = None  # how long confctl asked Twilio to ring it (None: Twilio's default)

    @property
    def status(self) -> ParticipantStatus:
        """Derived, so that facts arriving in any order give the same answer."""
        if self.joined_at is None and (self.final_call_status in FAILED_CALL_STATUSES or self.dial_error):
            return "failed"
        if self.left_at is not None or (self.joined_at is None and self.final_call_status is not None):
            return "left"
        if self.joined_at is not None:
            return "joined"
        if self.ringing:
            return "ringing"
        return "dialing"

    @property
    def is_live(self) -> bool:
        """Dialing, ringing or joined: the leg exists or is being set up."""
        return self.status in ("dialing", "ringing", "joined")

    @property
    def is_connected(self) -> bool:
        """In the conference now."""
        return self.status == "joined"

    @property
    def mode(self) -> Mode:
        """A supervisor's mode follows Twilio's flags once known; everyone else is `normal`."""
        if self.role != "supervisor":
            return "normal"
        if self.snapshot_order == NO_SNAPSHOT:
            return self.requested_mode
        if self.coaching:
            return "coach"
        return "monitor" if self.muted else "barge"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A warm or cold transfer of the customer from one agent to a target."""

    id: str
    kind: TransferKind
    state: TransferState
    from_label: str
    to: str
    target_label: str
    target_role: Role
    created_at: str
    fallback_to: str | None = None
    target_call_sid: str | None = None
    ended_at: str | None = None
    failure_reason: str | None = None
    # Where in Twilio's order the transfer's last move was decided by its facts; None for a move a command
    # made (or one stored before moves were placed), which stands whatever arrives later.
    decided_order: SnapshotOrder | None = None

    @property
    def is_active(self) -> bool:
        """Still dialing or consulting."""
        return self.state in ("dialing", "consulting")


@dataclass(frozen=True, slots=True)
class Recording:
    """The conference recording as last reported."""

    sid: str
    status: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Conference:
    """The whole state of one conference: the fold of its stream."""

    id: str
    version: int = 0
    twilio_sid: str | None = None
    customer: Customer | None = None
    record: bool = False
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    ended_order: SnapshotOrder | None = None
    last_sequence: int = 0
    missing_sequences: SequenceGaps = ()
    participants: tuple[Participant, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    recording: Recording | None = None

    @property
    def status(self) -> ConferenceStatus:
        """Derived from the start and end facts."""
        if self.ended_at is not None:
            return "completed"
        if self.started_at is not None:
            return "in-progress"
        return "init"

    @property
    def exists(self) -> bool:
        """Whether any fact about this conference has been stored."""
        return self.version > 0

    def find(self, ref: str) -> Participant | None:
        """A participant by CallSid or label; for a reused label, the live leg, else the newest."""
        by_sid = [p for p in self.participants if p.call_sid == ref]
        if by_sid:
            return by_sid[-1]
        by_label = [p for p in self.participants if p.label == ref]
        live = [p for p in by_label if p.is_live]
        if live:
            return live[-1]
        return by_label[-1] if by_label else None

    def by_call_sid(self, call_sid: str | None) -> Participant | None:
        """The participant whose leg is this call."""
        if call_sid is None:
            return None
        return next((p for p in self.participants if p.call_sid == call_sid), None)

    @property
    def active_transfer(self) -> Transfer | None:
        """The transfer in progress, if any (at most one per conference)."""
        return next((t for t in self.transfers if t.is_active), None)

    def transfer(self, transfer_id: str) -> Transfer | None:
        """A transfer by id."""
        return next((t for t in self.transfers if t.id == transfer_id), None)

    def ordered_participants(self) -> list[Participant]:
        """Participants in a stable order: first seen (Twilio's timestamps), then label."""
        return sorted(self.participants, key=lambda p: (p.first_seen_at or "", p.label, p.call_sid or ""))
