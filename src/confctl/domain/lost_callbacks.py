"""Signs, in a folded conference, that a Twilio callback never arrived: what to ask `sync` to repair.

Twilio does not retry a callback answered 5xx (nor, beyond what the URL's connection overrides allow, one it
could not deliver), so a lost fact is noticed from what did arrive:
- a gap in the conference's SequenceNumbers (Twilio numbers the status callbacks of a conference in the order
  it fired them; they may arrive out of order, so a gap is only a sign once it has lasted a while);
- a conference still `init` with two legs joined, one of them with startConferenceOnEnter (Twilio starts the
  conference at that join: its conference-start was lost);
- a leg still dialing (or ringing) after its ring timeout, Twilio's buffer and a margin (its join or its
  leave was lost).
Pure: each check says what it sees in a state (and at a time); when to look again and the sync itself are
the service's (service/suspicions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from confctl.domain.model import Conference, Participant, SequenceGaps

# "We always add a 5-second timeout buffer to outgoing calls" (CreateParticipant, `Timeout`), whose default is 60.
TWILIO_RING_BUFFER_S = 5
TWILIO_DEFAULT_RING_S = 60


def note_sequence(missing: SequenceGaps, last: int, sequence: int) -> SequenceGaps:
    """The SequenceNumbers still missing once `sequence` is seen, `last` being the highest seen before it.

    Kept as ranges, so a jump costs one entry however long it is, and the fold of the same callbacks in any
    order gives the same ranges. A number at or below 0 (absent or unusable) fills nothing."""
    if sequence > last:
        return missing if sequence == last + 1 else (*missing, (last + 1, sequence - 1))
    if not missing or sequence < missing[0][0]:
        return missing  # the common case: an in-order or a repeated number
    kept: list[tuple[int, int]] = []
    for low, high in missing:
        if low <= sequence <= high:
            if low < sequence:
                kept.append((low, sequence - 1))
            if sequence < high:
                kept.append((sequence + 1, high))
        else:
            kept.append((low, high))
    return tuple(kept)


def missing_between(conference: Conference, settled: int, through: int) -> SequenceGaps:
    """The missing SequenceNumbers above `settled` (already reconciled) and up to `through` (those that have
    had their grace)."""
    if not conference.missing_sequences:
        return ()  # the common case, on every callback
    return tuple((max(low, settled + 1), min(high, through)) for low, high in conference.missing_sequences
                 if high > settled and low <= through)


def missing_after(conference: Conference, settled: int) -> SequenceGaps:
    """Every missing SequenceNumber above `settled`."""
    return missing_between(conference, settled, conference.last_sequence)


def start_missing(conference: Conference) -> tuple[str, ...]:
    """The CallSids of the joined legs when Twilio must have started the conference and no conference-start
    is known (two legs in, one with startConferenceOnEnter); empty otherwise."""
    if conference.status != "init":
        return ()
    joined = [p for p in conference.participants if p.is_connected]
    if len(joined) < 2 or not any(p.start_conference_on_enter for p in joined):
        return ()
    return tuple(sorted(p.call_sid or p.label for p in joined))


def ring_deadline(leg: Participant, margin_s: float) -> datetime | None:
    """When a leg Twilio has (it has a CallSid) and that is still dialing or ringing is overdue: its dial, plus
    its ring timeout, Twilio's buffer and `margin_s`. None for any other leg."""
    # The cheap tests first: this runs for every leg on every state stored.
    if leg.call_sid is None or leg.joined_at is not None or leg.left_at is not None or leg.first_seen_at is None:
        return None
    if leg.status not in ("dialing", "ringing"):
        return None
    try:
        dialed = datetime.fromisoformat(leg.first_seen_at)
    except ValueError:
        return None
    if dialed.tzinfo is None:
        dialed = dialed.replace(tzinfo=UTC)
    ring_s = leg.timeout_s or TWILIO_DEFAULT_RING_S
    return dialed + timedelta(seconds=ring_s + TWILIO_RING_BUFFER_S + margin_s)


def ring_over(leg: Participant, now: datetime) -> bool:
    """Whether Twilio must have stopped ringing this leg by `now` (without any margin)."""
    deadline = ring_deadline(leg, 0.0)
    return deadline is not None and deadline < now


def next_ring_deadline(conference: Conference, margin_s: float,
                       skip: frozenset[str] = frozenset()) -> datetime | None:
    """The earliest `ring_deadline` of the conference's legs (those in `skip`, by CallSid, left out)."""
    earliest: datetime | None = None
    for leg in conference.participants:
        if leg.joined_at is None and leg.left_at is None and leg.call_sid not in skip:
            deadline = ring_deadline(leg, margin_s)
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
    return earliest


def overdue_legs(conference: Conference, now: datetime, margin_s: float) -> tuple[str, ...]:
    """The CallSids of the legs past their `ring_deadline` at `now`."""
    return tuple(p.call_sid for p in conference.participants
                 if p.call_sid is not None and (d := ring_deadline(p, margin_s)) is not None and d < now)
