"""Folding facts into state: SequenceNumber wins over arrival order; derived status; the codec round trip."""

from __future__ import annotations

import itertools

import pytest

from confctl.domain import events as ev
from confctl.domain.codec import UnknownEvent, decode, encode
from confctl.domain.evolve import fold

T = "2026-11-25T12:00:0{}+00:00"
CF, CUST, AGENT = "CF1", "CA1", "CA2"


def seen(cls: type[ev.ParticipantSeen], sid: str, label: str, seq: int, **flags: bool) -> ev.ParticipantSeen:
    return cls(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=T.format(seq),
               flags=ev.ParticipantFlags(**flags))  # type: ignore[arg-type]


FACTS: list[ev.DomainEvent] = [
    ev.ConferenceCreated(customer_call_sid=CUST, caller="+1", called="+2", record=False, at=T.format(0)),
    seen(ev.ParticipantJoined, CUST, "customer", 1),
    seen(ev.ParticipantJoined, AGENT, "agent-x", 2),
    ev.ConferenceStarted(conference_sid=CF, sequence=3, at=T.format(3)),
    seen(ev.ParticipantHeld, CUST, "customer", 4, hold=True),
    seen(ev.ParticipantUnheld, CUST, "customer", 5),
    seen(ev.ParticipantMuted, AGENT, "agent-x", 6, muted=True),
]


def view(facts: list[ev.DomainEvent]) -> object:
    state = fold("room-CA1", facts)
    return (state.status, state.version, sorted(
        (p.label, p.role, p.status, p.muted, p.hold, p.joined_at) for p in state.participants))


@pytest.mark.parametrize("order", list(itertools.islice(itertools.permutations(range(1, 7)), 0, 720, 37)))
def test_any_order_of_facts_folds_to_the_same_state(order: tuple[int, ...]) -> None:
    """Permutations of the callbacks (after the voice request) fold to the in-order state."""
    assert view([FACTS[0], *(FACTS[i] for i in order)]) == view(FACTS)


def test_newest_snapshot_wins() -> None:
    """An older hold arriving after a newer unhold does not put the customer back on hold."""
    state = fold("r", [FACTS[0], FACTS[1], FACTS[5], FACTS[4]])
    customer = state.find("customer")
    assert customer is not None and customer.hold is False


def test_a_dialed_leg_that_never_answers_is_failed() -> None:
    """A call-status failure before any join makes the participant failed, not left."""
    from dataclasses import replace

    from confctl.domain.model import Conference, Participant

    start = replace(Conference(id="r", version=1), participants=(Participant(label="agent-b", role="agent",
                                                                            call_sid="CA9"),))
    from confctl.domain.evolve import evolve

    state = evolve(start, ev.CallStatusChanged(call_sid="CA9", status="ringing", sequence=1, at=T.format(1)))
    assert state.participants[0].status == "ringing"
    state = evolve(state, ev.CallStatusChanged(call_sid="CA9", status="no-answer", sequence=2, at=T.format(2)))
    assert state.participants[0].status == "failed"


def test_conference_end_takes_everyone_out() -> None:
    """When the conference ends, legs whose leave has not arrived yet are left."""
    end = ev.ConferenceEnded(conference_sid=CF, sequence=9, at=T.format(9), reason="conference-ended-via-api")
    state = fold("r", [*FACTS, end])
    assert state.status == "completed"
    assert {p.status for p in state.participants} == {"left"}


def test_codec_round_trip_and_unknown_types() -> None:
    """Every event encodes to JSON-ready data and decodes to an equal event; unknown types survive."""
    for fact in FACTS:
        kind, data = encode(fact)
        assert decode(kind, data) == fact
    future = decode("participant.teleported", {"x": 1})
    assert isinstance(future, UnknownEvent) and encode(future) == ("participant.teleported", {"x": 1})
    assert fold("r", [FACTS[0], future]).version == 2


def test_the_domains_replace_copies_like_dataclasses_replace() -> None:
    """`frozen.replace` gives what `dataclasses.replace` gives, and refuses a field the record lacks."""
    import dataclasses

    import pytest

    from confctl.domain.frozen import replace
    from confctl.domain.model import Conference, Participant

    leg = Participant(label="agent-1", role="agent", call_sid="CA1")
    assert replace(leg, hold=True, muted=True) == dataclasses.replace(leg, hold=True, muted=True)
    room = Conference(id="room-1", participants=(leg,))
    assert replace(room, last_sequence=7) == dataclasses.replace(room, last_sequence=7)
    assert replace(room) == room and replace(room) is not room
    with pytest.raises(TypeError):
        replace(leg, nope=1)
