"""A transfer's course in Twilio's order: what its facts, placed by SequenceNumber, make of it.

Callbacks arrive in any order, so a transfer never moves on the fact that happened to arrive last. The fold
keeps where each join, leave and end is in Twilio's order (`joined_order`, `left_order`, `ended_order`), and
the course replays the transfer over those places: a target's leave that arrives before its join reads as
"joined, then left" (a participant-leave of a leg that had answered means it had joined); a leave the
conference's end caused (ReasonParticipantLeft `moderator_ended_conference`, `conference_ended_via_api`)
means the end came first, however late the customer's own leave or `conference-end` arrives.

A call status callback has a SequenceNumber of its own call, in no common order with the conference's: a
fact known only from one is `UNPLACED`, after every placed fact, until the conference callback that goes with
it (Twilio sends a participant-leave for every leg that leaves, answered or not) places it; an outcome it
decided is then revised if that place says otherwise. A dial Twilio refused is placed like a REST answer:
after every callback known then. A `canceled` call status alone decides nothing: someone cancelled the leg
(confctl, or the conference's end), and the participant-leave that goes with it says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from confctl.domain.model import Conference, Participant, SnapshotOrder, Transfer

Move = Literal["consulting", "completed", "cancelled", "failed", "fallback"]
Placed = tuple[SnapshotOrder, str]  # where a fact is in Twilio's order, and when it happened
UNPLACED: SnapshotOrder = (2**63 - 1, 0)  # known, but not yet where (a call status callback only); above any int64

# Leaves that the conference's end caused (the last one is confctl's own, for legs the end took out).
END_REASONS = frozenset({"moderator_ended_conference", "conference_ended_via_api", "conference_ended"})
TARGET_FAILURES = frozenset({"busy", "no-answer", "failed"})


@dataclass(frozen=True, slots=True)
class Step:
    """One move of a transfer, placed where the fact that makes it is in Twilio's order."""

    move: Move
    reason: str
    order: SnapshotOrder
    at: str


def target_of(conference: Conference, transfer: Transfer) -> Participant | None:
    """The leg the transfer is dialing now (the fallback's, once it is dialed)."""
    return conference.by_call_sid(transfer.target_call_sid) or conference.find(transfer.target_label)


def left(leg: Participant | None) -> Placed | None:
    """Where the leg's leave is (`UNPLACED` while it is known from a call status only)."""
    if leg is None or leg.left_at is None:
        return None
    return (leg.left_order or UNPLACED), leg.left_at


def there_at(leg: Participant | None, order: SnapshotOrder) -> bool:
    """Whether a leg that was in the conference had not left yet at `order`."""
    gone = left(leg)
    return leg is not None and (gone is None or gone[0] > order)


def conference_end(conference: Conference) -> Placed | None:
    """The first fact of the conference's end: the customer's leave, a leave the end caused, or the end."""
    ends: list[Placed] = []
    if conference.ended_at is not None:
        ends.append((conference.ended_order or UNPLACED, conference.ended_at))
    for leg in conference.participants:
        if leg.role == "customer" or leg.leave_reason in END_REASONS:
            gone = left(leg)
            if gone is not None:
                ends.append(gone)
    return min(ends, default=None)


def _joined(target: Participant | None) -> Placed | None:
    if target is None or target.joined_at is None:
        return None
    if target.joined_order is not None:
        return target.joined_order, target.joined_at
    if target.left_order is not None:  # known from its leave only: it joined just before that
        return (target.left_order[0], -1), target.joined_at
    return UNPLACED, target.joined_at


def _failure(target: Participant | None, conference: Conference, at: str) -> tuple[str, Placed] | None:
    """Why the target never joined, and where that is, if it is known."""
    if target is None or target.joined_at is not None:
        return None
    if target.dial_error:  # Twilio's REST answer: after every callback known when it was stored
        return f"dial_failed: {target.dial_error}", ((conference.last_sequence, 1), at)
    status = target.final_call_status
    placed = (target.left_order, target.left_at) if target.left_order is not None and target.left_at else None
    if status in TARGET_FAILURES:
        return status, placed or (UNPLACED, at)
    if placed is not None:  # its leave came: cancelled (that leave says by whom), or a leave with no status
        return (status if status == "canceled" else "left_before_joining"), placed
    return None


def _first(options: list[tuple[Placed | None, Move, str]]) -> Step | None:
    """The move whose fact comes first in Twilio's order; on a tie, the one listed first."""
    known = [(placed, rank, move, reason) for rank, (placed, move, reason) in enumerate(options) if placed]
    if not known:
        return None
    placed, _, move, reason = min(known, key=lambda option: (option[0][0], option[1]))
    return Step(move, reason, *placed)


def course(conference: Conference, transfer: Transfer, at: str) -> list[Step]:
    """The moves the facts known now make, in Twilio's order, from the current target's dial on (consulting,
    then the outcome); `at` is when the fact being stored happened, for facts with no time of their own."""
    target = target_of(conference, transfer)
    end = conference_end(conference)
    failure = _failure(target, conference, at)
    failed: Move = "fallback" if transfer.kind == "cold" and transfer.fallback_to else "failed"
    # The end is listed first: a leave it caused is placed where the end is.
    step = _first([(end, "cancelled", "customer_left"),
                   (failure[1] if failure else None, failed, failure[0] if failure else ""),
                   (_joined(target), "completed", "target_joined")])
    if step is None or step.move != "completed":
        return [] if step is None else [step]
    source = conference.find(transfer.from_label)
    if transfer.kind != "warm" or not there_at(source, step.order):
        return [step]
    consulting = Step("consulting", "target_joined", step.order, step.at)
    outcome = _first([(end, "cancelled", "customer_left"),
                      (left(source), "completed", "from_left"),
                      (left(target), "cancelled", "target_left")])
    return [consulting] if outcome is None else [consulting, outcome]
