"""Twilio's REST answers (`participant.updated`) against its callbacks: the newest view of a leg wins."""

from __future__ import annotations

import itertools

import pytest

from confctl.domain import command_events as ce
from confctl.domain import events as ev
from confctl.domain.codec import decode, encode
from confctl.domain.evolve import fold
from confctl.domain.model import Conference

T = "2026-11-25T12:00:0{}+00:00"
CF, CUST = "CF1", "CA1"


def joined(seq: int) -> ev.ParticipantJoined:
    return ev.ParticipantJoined(conference_sid=CF, call_sid=CUST, label="customer", sequence=seq, at=T.format(seq),
                                flags=ev.ParticipantFlags(end_conference_on_exit=True))


def callback(cls: type[ev.ParticipantSeen], seq: int, *, hold: bool) -> ev.ParticipantSeen:
    return cls(conference_sid=CF, call_sid=CUST, label="customer", sequence=seq, at=T.format(seq),
               flags=ev.ParticipantFlags(hold=hold, end_conference_on_exit=True))


def answer(after: int, *, hold: bool) -> ce.ParticipantUpdated:
    return ce.ParticipantUpdated(label="customer", call_sid=CUST, after_sequence=after, at=T.format(after),
                                 flags=ev.ParticipantFlags(hold=hold, end_conference_on_exit=True))


START: list[ev.DomainEvent] = [
    ev.ConferenceCreated(customer_call_sid=CUST, caller="+1", called="+2", record=False, at=T.format(0)),
    joined(1),
]


def hold_of(events: list[ev.DomainEvent]) -> bool:
    customer = fold("room-CA1", events).find("customer")
    assert customer is not None
    return customer.hold


def test_the_later_of_two_rest_answers_after_the_same_callback_wins() -> None:
    """hold:true then at once hold:false, no callback in between: the second answer is Twilio's newest view."""
    assert hold_of([*START, answer(1, hold=True), answer(1, hold=False)]) is False
    assert hold_of([*START, answer(1, hold=False), answer(1, hold=True)]) is True


def test_a_newer_callback_beats_an_older_rest_answer_and_a_rest_answer_beats_what_it_reflects() -> None:
    """A callback numbered after the answer's `after_sequence` wins; one numbered at or before it does not."""
    assert hold_of([*START, answer(1, hold=False), callback(ev.ParticipantHeld, 2, hold=True)]) is True
    assert hold_of([*START, callback(ev.ParticipantHeld, 2, hold=True), answer(2, hold=False)]) is False
    # The callback it reflects arriving after the answer changes nothing either.
    assert hold_of([*START, answer(2, hold=False), callback(ev.ParticipantHeld, 2, hold=True)]) is False


@pytest.mark.parametrize("at", list(itertools.combinations_with_replacement(range(3), 2)))
def test_two_quick_rest_answers_and_their_late_callbacks_end_as_twilio_says(at: tuple[int, int]) -> None:
    """hold then unhold answered before either callback arrives: wherever the two callbacks land among the
    answers, the state ends unheld, and is unheld as soon as the second answer is stored."""
    answers: list[ev.DomainEvent] = [answer(1, hold=True), answer(1, hold=False)]
    held, unheld = callback(ev.ParticipantHeld, 2, hold=True), callback(ev.ParticipantUnheld, 3, hold=False)
    events = list(answers)
    events.insert(at[1], unheld)
    events.insert(at[0], held)
    assert hold_of([*START, *events]) is False
    upto_second = events[: events.index(answers[1]) + 1]
    if unheld not in upto_second and held not in upto_second:
        assert hold_of([*START, *upto_second]) is False


def test_rest_answers_replay_from_stored_logs_in_the_same_order() -> None:
    """The order of two answers comes from their place in the log, so a replay of the stored log agrees."""
    events: list[ev.DomainEvent] = [*START, answer(1, hold=True), answer(1, hold=False)]
    replayed = [decode(*encode(e)) for e in events]
    assert fold("room-CA1", replayed) == fold("room-CA1", events)
    assert isinstance(fold("room-CA1", replayed), Conference)
