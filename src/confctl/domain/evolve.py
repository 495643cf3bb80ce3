"""`evolve(state, event) -> state`: how each fact changes a conference. Replay is a fold of this.

Facts from Twilio may arrive in any order and are all kept in the log; ordering is restored here with
Twilio's SequenceNumber (newest participant snapshot wins) and with flags that facts only ever add to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from confctl.domain import coaching as coaching_rules
from confctl.domain import events as ev
from confctl.domain.frozen import replace
from confctl.domain.lost_callbacks import note_sequence
from confctl.domain.model import (
    CUSTOMER_LABEL,
    FAILED_CALL_STATUSES,
    Conference,
    Customer,
    Participant,
    Recording,
    Role,
    SnapshotOrder,
)


def infer_role(conference: Conference, call_sid: str, label: str | None) -> Role:
    """The role of a leg confctl did not dial, from what Twilio tells: the customer's call, or its label."""
    if (conference.customer and conference.customer.call_sid == call_sid) or label == CUSTOMER_LABEL:
        return "customer"
    name = (label or "").lower()
    if name.startswith("supervisor"):
        return "supervisor"
    if name.startswith("agent"):
        return "agent"
    return "external"


def earliest(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


def first(a: SnapshotOrder | None, b: SnapshotOrder | None) -> SnapshotOrder | None:
    """The earlier of two places in Twilio's order (None: not placed)."""
    if a is None:
        return b
    return a if b is None or a <= b else b


def implies_join(event: ev.ParticipantLeft) -> bool:
    """Whether this leave says the leg had been in the conference: every leave but that of an add that failed
    (Twilio sends one, with the call's final status, for a Participants API leg that never answered). A leave
    without either field (before Twilio added them in 2023) says nothing."""
    if event.call_status is None and event.reason is None:
        return False
    return event.reason != "participant_add_failed" and event.call_status not in FAILED_CALL_STATUSES


def with_leg_sid(conference: Conference, leg: Participant | None, call_sid: str) -> Conference:
    """The transfer a leg was dialed for records the CallSid the leg just got, even when it ended before."""
    if leg is None or leg.call_sid is not None or leg.transfer_id is None:
        return conference
    return replace(conference, transfers=tuple(
        replace(t, target_call_sid=call_sid)
        if t.id == leg.transfer_id and t.target_label == leg.label and t.target_call_sid is None else t
        for t in conference.transfers))


def replace_participant(conference: Conference, old: Participant | None, new: Participant) -> Conference:
    if old is None:
        return replace(conference, participants=(*conference.participants, new))
    return replace(conference, participants=tuple(new if p is old else p for p in conference.participants))


def _participant_event(conference: Conference, event: ev.ParticipantSeen) -> Conference:
    """Find (or start tracking) the participant a callback is about, apply its snapshot if newest, and what a
    join or a leave adds. Each record is copied once (copies are most of a fold's cost)."""
    existing = conference.by_call_sid(event.call_sid) or _dialing_leg(conference, event.label)
    label = event.label or (existing.label if existing else event.call_sid)
    base = existing or Participant(
        label=label, role=infer_role(conference, event.call_sid, event.label), call_sid=event.call_sid
    )
    changes: dict[str, Any] = {"call_sid": event.call_sid, "first_seen_at": earliest(base.first_seen_at, event.at)}
    order = (event.sequence, 0)
    newest = order > base.snapshot_order
    if newest:
        flags = event.flags
        changes.update(
            muted=flags.muted,
            hold=flags.hold,
            coaching=flags.coaching,
            end_conference_on_exit=flags.end_conference_on_exit,
            start_conference_on_enter=flags.start_conference_on_enter,
            snapshot_order=order,
        )
    # Whom it coaches is not in the callback: kept from confctl's requests and Twilio's REST answers.
    changes.update(coaching_rules.after_callback(base, event.flags, event.sequence, newest))
    if isinstance(event, ev.ParticipantJoined):
        changes.update(joined_at=earliest(base.joined_at, event.at), joined_order=first(base.joined_order, order))
        if conference.ended_at is not None and base.left_at is None:
            # A join delivered after the end: the conference's end already took this leg out.
            changes.update(left_at=conference.ended_at, leave_reason="conference_ended",
                           left_order=conference.ended_order)
    elif isinstance(event, ev.ParticipantLeft):
        changes.update(
            left_at=earliest(base.left_at, event.at),
            left_order=first(base.left_order, order),
            leave_reason=event.reason,
            final_call_status=base.final_call_status or _final(event.call_status),
        )
        if implies_join(event):
            # It was in the conference: its join happened before, whether or not its callback has arrived.
            changes["joined_at"] = earliest(base.joined_at, event.at)
    participant = replace(base, **changes)
    participants = ((*conference.participants, participant) if existing is None
                    else tuple(participant if p is existing else p for p in conference.participants))
    conference = with_leg_sid(conference, existing, event.call_sid)
    return replace(conference, participants=participants, last_sequence=max(conference.last_sequence, event.sequence),
                   missing_sequences=_noted(conference, event.sequence),
                   twilio_sid=conference.twilio_sid or event.conference_sid)


def _noted(conference: Conference, sequence: int) -> tuple[tuple[int, int], ...]:
    """The conference's missing SequenceNumbers once this callback's is seen (a lost callback leaves a gap)."""
    return note_sequence(conference.missing_sequences, conference.last_sequence, sequence)


def _final(call_status: str | None) -> str | None:
    """Only a terminal call status says how a leg ended; `in-progress` on a leave says nothing."""
    return call_status if call_status in ("completed", "busy", "no-answer", "failed", "canceled") else None


def _dialing_leg(conference: Conference, label: str | None) -> Participant | None:
    """The live leg confctl is dialing under `label` whose CallSid is not known yet."""
    candidate = conference.find(label) if label else None
    return candidate if candidate is not None and candidate.call_sid is None and candidate.is_live else None


def _call_status(conference: Conference, event: ev.CallStatusChanged) -> Conference:
    existing = conference.by_call_sid(event.call_sid) or _dialing_leg(conference, event.label)
    if existing is None:
        return conference
    participant = replace(existing, call_sid=event.call_sid,
                          first_seen_at=earliest(existing.first_seen_at, event.at))
    if event.status in ("ringing", "in-progress"):
        participant = replace(participant, ringing=True)
    final = _final(event.status)
    if final is not None:
        participant = replace(participant, final_call_status=final)
        if participant.joined_at is not None and participant.left_at is None:
            # The leg ended: no participant-leave is needed to know it is gone (its place in Twilio's order
            # is known once that leave arrives).
            participant = replace(participant, left_at=event.at, leave_reason=participant.leave_reason)
    return replace_participant(with_leg_sid(conference, existing, event.call_sid), existing, participant)


def _created(conference: Conference, event: ev.ConferenceCreated) -> Conference:
    return replace(
        conference,
        customer=Customer(call_sid=event.customer_call_sid, caller=event.caller, called=event.called),
        record=event.record,
        created_at=earliest(conference.created_at, event.at),
    )


def _started(conference: Conference, event: ev.ConferenceStarted) -> Conference:
    return replace(
        conference,
        twilio_sid=event.conference_sid,
        started_at=earliest(conference.started_at, event.at),
        created_at=earliest(conference.created_at, event.at),
        last_sequence=max(conference.last_sequence, event.sequence),
        missing_sequences=_noted(conference, event.sequence),
    )


def _ended(conference: Conference, event: ev.ConferenceEnded) -> Conference:
    # Everyone still in the room leaves with the conference, whatever order the leaves arrive in.
    order = (event.sequence, 0)
    participants = tuple(
        replace(p, left_at=event.at, leave_reason=p.leave_reason or "conference_ended", left_order=order)
        if p.joined_at is not None and p.left_at is None
        else p
        for p in conference.participants
    )
    return replace(
        conference,
        twilio_sid=event.conference_sid,
        ended_at=earliest(conference.ended_at, event.at),
        ended_order=first(conference.ended_order, order),
        end_reason=event.reason,
        created_at=earliest(conference.created_at, event.at),
        last_sequence=max(conference.last_sequence, event.sequence),
        missing_sequences=_noted(conference, event.sequence),
        participants=participants,
    )


# `processing`: Twilio is still writing the file of a stopped recording (then `completed`).
_RECORDING_RANK = {"in-progress": 0, "paused": 1, "stopped": 2, "processing": 2,
                   "completed": 3, "absent": 3, "failed": 3}


def _recording(conference: Conference, event: ev.RecordingStatusChanged) -> Conference:
    current = conference.recording
    # Without a SequenceNumber, the only safe order is the lifecycle: a final status is never undone.
    if current is not None and current.sid == event.recording_sid and _RECORDING_RANK.get(current.status, 0) >= 3:
        return conference
    return replace(conference, recording=Recording(sid=event.recording_sid, status=event.status, url=event.url))


_HANDLERS: dict[type[ev.DomainEvent], Callable[[Conference, Any], Conference]] = {
    ev.ConferenceCreated: _created,
    ev.ConferenceStarted: _started,
    ev.ConferenceEnded: _ended,
    ev.CallStatusChanged: _call_status,
    ev.RecordingStatusChanged: _recording,
}
for _cls in (
    ev.ParticipantJoined,
    ev.ParticipantLeft,
    ev.ParticipantMuted,
    ev.ParticipantUnmuted,
    ev.ParticipantHeld,
    ev.ParticipantUnheld,
    ev.ParticipantModified,
):
    _HANDLERS[_cls] = _participant_event


def on(event_type: type[ev.DomainEvent]) -> Callable[[Callable[[Conference, Any], Conference]], Any]:
    """Register how another module's event type evolves the state (used by commands and transfers)."""

    def decorator(fn: Callable[[Conference, Any], Conference]) -> Callable[[Conference, Any], Conference]:
        _HANDLERS[event_type] = fn
        return fn

    return decorator


def evolve(conference: Conference, event: ev.DomainEvent) -> Conference:
    """The state after one more event; the version counts every event, known or not."""
    handler = _HANDLERS.get(type(event))
    state = handler(conference, event) if handler else conference
    return replace(state, version=conference.version + 1)


def fold(conference_id: str, events: Iterable[ev.DomainEvent]) -> Conference:
    """Replay: the state of a conference from its whole history."""
    state = Conference(id=conference_id)
    for event in events:
        state = evolve(state, event)
    return state


# Command and transfer events evolve the state too; their handlers register themselves with `on`.
from confctl.domain import announcements, command_evolve  # noqa: E402, F401
