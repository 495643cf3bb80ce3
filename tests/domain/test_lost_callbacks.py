"""Signs of a lost callback in a folded conference: SequenceNumber gaps, a start that never came, a leg dialing
past its ring time (pure checks, no I/O)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from confctl.domain import command_events as ce
from confctl.domain import events as ev
from confctl.domain import lost_callbacks as lc
from confctl.domain.evolve import fold
from confctl.domain.model import Conference

AT = "2026-11-25T12:00:00+00:00"
START = datetime.fromisoformat(AT)
CF = "CF1"


def joined(sid: str, label: str, seq: int, **flags: bool) -> ev.ParticipantJoined:
    return ev.ParticipantJoined(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=AT,
                                flags=ev.ParticipantFlags(**flags))  # type: ignore[arg-type]


def muted(sid: str, label: str, seq: int) -> ev.ParticipantMuted:
    return ev.ParticipantMuted(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=AT,
                               flags=ev.ParticipantFlags(muted=True))


CREATED = ev.ConferenceCreated(customer_call_sid="CA1", caller="+15550001111", called="+15550002222",
                               record=False, at=AT)
CALLBACKS: list[ev.DomainEvent] = [
    joined("CA1", "customer", 1),
    joined("CA2", "alice", 2),
    ev.ConferenceStarted(conference_sid=CF, sequence=3, at=AT),
    muted("CA2", "alice", 4),
    muted("CA1", "customer", 5),
    ev.ConferenceEnded(conference_sid=CF, sequence=6, at=AT, reason="last-participant-left"),
]


def test_in_order_callbacks_leave_no_gap() -> None:
    """Callbacks 1, 2, 3, ... in order: nothing is missing."""
    assert fold("room-CA1", [CREATED, *CALLBACKS]).missing_sequences == ()


@pytest.mark.parametrize("lost", range(len(CALLBACKS) - 1))
def test_a_lost_callback_leaves_its_sequence_number_missing_whatever_the_arrival_order(lost: int) -> None:
    """One callback never arrives: every arrival order of the others folds to the same single gap."""
    rest = [c for i, c in enumerate(CALLBACKS) if i != lost]
    expected = ((lost + 1, lost + 1),)
    for order in itertools.islice(itertools.permutations(rest), 0, 120, 7):
        assert fold("room-CA1", [CREATED, *order]).missing_sequences == expected


def test_a_late_callback_fills_its_gap() -> None:
    """3 before 2: a gap until 2 arrives, none after."""
    early = fold("room-CA1", [CREATED, joined("CA1", "customer", 1), ev.ConferenceStarted(CF, 3, AT)])
    assert early.missing_sequences == ((2, 2),)
    assert lc.missing_after(early, 0) == ((2, 2),)
    assert fold("room-CA1", [CREATED, joined("CA1", "customer", 1), ev.ConferenceStarted(CF, 3, AT),
                             joined("CA2", "alice", 2)]).missing_sequences == ()


def test_gaps_are_kept_as_ranges_and_split_as_they_fill() -> None:
    """A jump is one range however long (a bogus SequenceNumber costs no memory); a number inside splits it."""
    gaps = lc.note_sequence((), 1, 10**15)
    assert gaps == ((2, 10**15 - 1),)
    assert lc.note_sequence(gaps, 10**15, 5) == ((2, 4), (6, 10**15 - 1))
    assert lc.note_sequence(((2, 2),), 3, 2) == ()
    assert lc.note_sequence(((2, 2),), 3, -1) == ((2, 2),), "an unusable SequenceNumber fills nothing"


def test_missing_between_bounds_the_gaps_looked_at() -> None:
    """Only numbers after `settled` and up to `through` count: older ones were reconciled, newer ones are young."""
    state = Conference(id="c", last_sequence=12, missing_sequences=((2, 3), (7, 7), (10, 11)))
    assert lc.missing_between(state, 0, 12) == ((2, 3), (7, 7), (10, 11))
    assert lc.missing_between(state, 3, 9) == ((7, 7),)
    assert lc.missing_between(state, 2, 10) == ((3, 3), (7, 7), (10, 10))
    assert lc.missing_between(state, 11, 12) == ()
    assert lc.missing_after(state, 7) == ((10, 11),)


def test_start_missing_once_two_legs_one_starting_joined_and_no_start() -> None:
    """Twilio starts a conference when a second leg is in and one has startConferenceOnEnter."""
    one = fold("room-CA1", [CREATED, joined("CA1", "customer", 1)])
    two = fold("room-CA1", [CREATED, joined("CA1", "customer", 1), joined("CA2", "alice", 2)])
    started = fold("room-CA1", [CREATED, joined("CA1", "customer", 1), joined("CA2", "alice", 2),
                                ev.ConferenceStarted(CF, 3, AT)])
    waiting = fold("room-CA1", [CREATED, joined("CA1", "customer", 1, start_conference_on_enter=False),
                                joined("CA2", "alice", 2, start_conference_on_enter=False)])
    assert lc.start_missing(two) == ("CA1", "CA2")
    assert lc.start_missing(one) == ()
    assert lc.start_missing(started) == ()
    assert lc.start_missing(waiting) == (), "nobody who starts it is in: Twilio keeps it waiting"


def dialing(*events: ev.DomainEvent) -> Conference:
    base: list[ev.DomainEvent] = [CREATED, joined("CA1", "customer", 1), joined("CA2", "alice", 2),
                                  ev.ConferenceStarted(CF, 3, AT)]
    return fold("room-CA1", [*base, *events])


def dial(label: str, timeout_s: int | None, call_sid: str | None) -> list[ev.DomainEvent]:
    events: list[ev.DomainEvent] = [ce.ParticipantDialRequested(label=label, role="agent", to=f"client:{label}",
                                                                at=AT, timeout_s=timeout_s)]
    if call_sid is not None:
        events.append(ce.ParticipantDialed(label=label, call_sid=call_sid, at=AT))
    return events


def test_a_leg_is_overdue_after_its_ring_time_twilios_buffer_and_the_margin() -> None:
    """timeout_s (60 when unset) + Twilio's 5 s buffer + the margin, from the dial; only legs Twilio has."""
    state = dialing(*dial("bob", 10, "CA3"), *dial("carol", None, "CA4"), *dial("dave", 5, None))
    assert lc.next_ring_deadline(state, 2.0) == START + timedelta(seconds=17)
    assert lc.overdue_legs(state, START + timedelta(seconds=16.9), 2.0) == ()
    assert lc.overdue_legs(state, START + timedelta(seconds=17.1), 2.0) == ("CA3",)
    assert lc.overdue_legs(state, START + timedelta(seconds=68), 2.0) == ("CA3", "CA4")
    assert lc.next_ring_deadline(state, 2.0, skip=frozenset({"CA3"})) == START + timedelta(seconds=67)


def test_a_leg_that_joined_or_ended_is_never_overdue() -> None:
    """The join (or the call's end) arrived: nothing to suspect."""
    answered = dialing(*dial("bob", 10, "CA3"), joined("CA3", "bob", 4))
    failed = dialing(*dial("bob", 10, "CA3"),
                     ev.CallStatusChanged(call_sid="CA3", status="no-answer", sequence=3, at=AT))
    late = START + timedelta(hours=1)
    assert lc.overdue_legs(answered, late, 0) == () and lc.next_ring_deadline(answered, 0) is None
    assert lc.overdue_legs(failed, late, 0) == ()
    assert lc.ring_over(dialing(*dial("bob", 10, "CA3")).find("bob"), late)  # type: ignore[arg-type]
