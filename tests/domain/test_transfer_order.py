"""Transfers follow Twilio's order, not arrival order: any permutation and repetition of a transfer's callbacks
ends it as the same callbacks delivered in SequenceNumber order do, asking the same of Twilio.

Each scenario lists what Twilio sends, in the order it happened (conference callbacks by SequenceNumber, a
call status callback next to the conference callback of the same moment). A fact that only exists once
confctl asked for it (a fallback leg's callbacks, the customer's unhold) is delivered only after the
reaction that asks for it was planned, wherever hypothesis puts it. Requests about a leg that is gone at
the end (a hang-up of a target that left anyway) may be skipped when its leave was already known: requests
about every leg still there, and every dial, must be the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confctl.domain import command_events as ce
from confctl.domain import events as ev
from confctl.domain import transfers as tr
from confctl.domain.effects import Dial, Effect, Plan, Update
from confctl.domain.evolve import fold
from confctl.domain.model import Conference
from confctl.domain.reactions import planned

CF = "CF1"
CUST, FROM, TARGET, FALLBACK = "CA1", "CA2", "CA3", "CA4"
TARGET_LABEL, FALLBACK_LABEL = "agent-1", "agent-fallback-1"
HUNG_UP, ENDED, ADD_FAILED, KICKED = ("participant_hung_up", "moderator_ended_conference", "participant_add_failed",
                                      "participant_updated_via_api")


def at(seq: int, extra: int = 0) -> str:
    return f"2026-11-25T12:{seq:02d}:{extra:02d}+00:00"


def flags(sid: str, **changes: bool) -> ev.ParticipantFlags:
    return ev.ParticipantFlags(end_conference_on_exit=sid == CUST, **changes)  # type: ignore[arg-type]


LABELS = {CUST: "customer", FROM: "agent-a", TARGET: TARGET_LABEL, FALLBACK: FALLBACK_LABEL}


def join(sid: str, seq: int) -> ev.ParticipantJoined:
    return ev.ParticipantJoined(conference_sid=CF, call_sid=sid, label=LABELS[sid], sequence=seq, at=at(seq),
                                flags=flags(sid))


def leave(sid: str, seq: int, status: str = "completed", reason: str = HUNG_UP) -> ev.ParticipantLeft:
    return ev.ParticipantLeft(conference_sid=CF, call_sid=sid, label=LABELS[sid], sequence=seq, at=at(seq),
                              flags=flags(sid, hold=sid == CUST), reason=reason, call_status=status)


def held(seq: int, hold: bool) -> ev.ParticipantSeen:
    cls = ev.ParticipantHeld if hold else ev.ParticipantUnheld
    return cls(conference_sid=CF, call_sid=CUST, label="customer", sequence=seq, at=at(seq),
               flags=flags(CUST, hold=hold))


def call(sid: str, status: str, seq: int, moment: int) -> ev.CallStatusChanged:
    """A call status callback (its own SequenceNumber), at the moment of conference callback `moment`."""
    return ev.CallStatusChanged(call_sid=sid, status=status, sequence=seq, at=at(moment), label=LABELS[sid])


def end(seq: int) -> ev.ConferenceEnded:
    return ev.ConferenceEnded(conference_sid=CF, sequence=seq, at=at(seq), ended_by_call_sid=CUST,
                              ended_by_label="customer", reason="participant-with-end-conference-on-exit-left")


def dialed(sid: str, moment: int) -> ce.ParticipantDialed:
    return ce.ParticipantDialed(label=LABELS[sid], call_sid=sid, at=at(moment, 30))


Gate = Callable[[Sequence[Effect]], bool]


def dial_of(label: str) -> Gate:
    return lambda effects: any(isinstance(e, Dial) and e.label == label for e in effects)


def unhold_planned(effects: Sequence[Effect]) -> bool:
    return any(isinstance(e, Update) and e.label == "customer" and e.hold is False for e in effects)


@dataclass(frozen=True)
class Fact:
    """One delivery; `gate` says when it can exist (after confctl asked Twilio for it)."""

    event: ev.DomainEvent
    gate: Gate | None = None

    def __repr__(self) -> str:  # short, for hypothesis's report of a failing order
        e = self.event
        fields = [getattr(e, name) for name in ("call_sid", "sequence", "status", "call_status", "reason")
                  if getattr(e, name, None) is not None]
        return f"{e.type}({', '.join(map(str, fields))})"


def facts(*events: ev.DomainEvent | Fact) -> list[Fact]:
    return [e if isinstance(e, Fact) else Fact(e) for e in events]


def unheld(seq: int) -> Fact:
    return Fact(held(seq, False), unhold_planned)


def fallback(event: ev.DomainEvent) -> Fact:
    return Fact(event, dial_of(FALLBACK_LABEL))


# Warm: the customer (seq 1) and agent-a (seq 2) talk, the conference started (3); the transfer holds the
# customer (4) and dials agent-1.
WARM_START = facts(held(4, True), dialed(TARGET, 4), call(TARGET, "ringing", 1, 4))
WARM: dict[str, tuple[list[Fact], tuple[str, str | None]]] = {
    "target_hangs_up_in_consult": (WARM_START + facts(
        join(TARGET, 5), call(TARGET, "in-progress", 2, 5), leave(TARGET, 6), call(TARGET, "completed", 3, 6),
        unheld(7)), ("cancelled", "target_left")),
    "from_hangs_up_in_consult": (WARM_START + facts(
        join(TARGET, 5), call(TARGET, "in-progress", 2, 5), leave(FROM, 6), unheld(7)), ("completed", None)),
    "target_busy": (WARM_START + facts(
        call(TARGET, "busy", 2, 5), leave(TARGET, 5, "busy", ADD_FAILED), unheld(6)), ("failed", "busy")),
    "target_no_answer": (WARM_START + facts(
        call(TARGET, "no-answer", 2, 5), leave(TARGET, 5, "no-answer", ADD_FAILED), unheld(6)),
        ("failed", "no-answer")),
    "customer_hangs_up_in_consult": (WARM_START + facts(
        join(TARGET, 5), call(TARGET, "in-progress", 2, 5), leave(CUST, 6), leave(TARGET, 7, reason=ENDED),
        call(TARGET, "completed", 3, 7), leave(FROM, 8, reason=ENDED), end(9)), ("cancelled", "customer_left")),
    "customer_hangs_up_while_target_rings": (WARM_START + facts(
        leave(CUST, 5), leave(TARGET, 6, "canceled", ENDED), call(TARGET, "canceled", 2, 6),
        leave(FROM, 7, reason=ENDED), end(8)), ("cancelled", "customer_left")),
    "customer_hangs_up_target_still_ringing": (WARM_START + facts(
        leave(CUST, 5), leave(FROM, 6, reason=ENDED), end(7)), ("cancelled", "customer_left")),
    "from_then_target_hang_up": (WARM_START + facts(
        join(TARGET, 5), call(TARGET, "in-progress", 2, 5), leave(FROM, 6), unheld(7), leave(TARGET, 8),
        call(TARGET, "completed", 3, 8)), ("completed", None)),
    "target_then_from_hang_up": (WARM_START + facts(
        join(TARGET, 5), call(TARGET, "in-progress", 2, 5), leave(TARGET, 6), call(TARGET, "completed", 3, 6),
        unheld(7), leave(FROM, 8)), ("cancelled", "target_left")),
}

# Cold: the same call; the transfer holds the customer (4), kicks agent-a (5) and dials agent-1.
COLD_START = facts(held(4, True), leave(FROM, 5, reason=KICKED), dialed(TARGET, 5), call(TARGET, "ringing", 1, 5))
FALLBACK_FAILS = facts(call(TARGET, "no-answer", 2, 6), leave(TARGET, 6, "no-answer", ADD_FAILED),
                       fallback(dialed(FALLBACK, 6)), fallback(call(FALLBACK, "ringing", 1, 6)))
COLD: dict[str, tuple[list[Fact], tuple[str, str | None], str | None]] = {
    "target_joins": (COLD_START + facts(
        join(TARGET, 6), call(TARGET, "in-progress", 2, 6), unheld(7)), ("completed", None), None),
    "target_joins_and_leaves": (COLD_START + facts(
        join(TARGET, 6), call(TARGET, "in-progress", 2, 6), unheld(7), leave(TARGET, 8),
        call(TARGET, "completed", 3, 8)), ("completed", None), None),
    "target_busy": (COLD_START + facts(
        call(TARGET, "busy", 2, 6), leave(TARGET, 6, "busy", ADD_FAILED)), ("failed", "busy"), None),
    "fallback_joins": (COLD_START + FALLBACK_FAILS + facts(
        fallback(join(FALLBACK, 7)), fallback(call(FALLBACK, "in-progress", 2, 7)), unheld(8)),
        ("completed", None), "+15550009999"),
    "fallback_busy_too": (COLD_START + FALLBACK_FAILS + facts(
        fallback(call(FALLBACK, "busy", 2, 7)), fallback(leave(FALLBACK, 7, "busy", ADD_FAILED))),
        ("failed", "busy"), "+15550009999"),
    "customer_hangs_up_while_target_rings": (COLD_START + facts(
        leave(CUST, 6), leave(TARGET, 7, "canceled", ENDED), call(TARGET, "canceled", 2, 7), end(8)),
        ("cancelled", "customer_left"), None),
    "customer_hangs_up_target_still_ringing": (COLD_START + facts(leave(CUST, 6), end(7)),
                                               ("cancelled", "customer_left"), None),
    "customer_hangs_up_while_fallback_rings": (COLD_START + FALLBACK_FAILS + facts(
        fallback(leave(CUST, 7)), fallback(end(8))), ("cancelled", "customer_left"), "+15550009999"),
}


def started(kind: str, fallback_to: str | None) -> Conference:
    """The customer and agent-a talking, and the transfer just requested (its own plan stored)."""
    state = fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid=CUST, caller="+15550001111", called="+15550002222", record=False,
                             at=at(0)),
        join(CUST, 1), join(FROM, 2), ev.ConferenceStarted(conference_sid=CF, sequence=3, at=at(3)),
    ])
    plan = tr.plan_transfer(state, tr.StartTransfer(kind=kind, from_label="agent-a", to="client:b",
                                                    fallback_to=fallback_to), "TR1", at(3, 10), None)
    return planned(state, plan)[1]


def deliver(state: Conference, arrivals: Sequence[Fact]) -> tuple[Conference, list[Effect]]:
    """Store each fact with its reactions, as the webhooks do; a gated fact waits for what it needs."""
    effects: list[Effect] = []
    waiting: list[Fact] = []
    for fact in arrivals:
        waiting.append(fact)
        moved = True
        while moved:
            moved = False
            for item in list(waiting):
                if item.gate is None or item.gate(effects):
                    waiting.remove(item)
                    plan, state = planned(state, Plan(events=[item.event]))
                    effects.extend(plan.effects)
                    moved = True
    return state, effects


def outcome(state: Conference, effects: list[Effect]) -> tuple[tuple[object, ...], Counter[Effect]]:
    """The transfer as the API shows it, and the requests about legs still there (and every dial)."""
    transfer = state.transfer("TR1")
    assert transfer is not None
    gone = {p.call_sid for p in state.participants if p.call_sid and not p.is_live}
    kept = Counter(e for e in effects if getattr(e, "call_sid", None) not in gone)
    legs = sorted((p.label, p.status, p.hold) for p in state.participants)
    return (transfer.state, transfer.failure_reason, transfer.to, transfer.target_label, transfer.target_call_sid,
            legs), kept


@st.composite
def arrivals(draw: st.DrawFn, scenario: list[Fact]) -> list[Fact]:
    """Any order of the scenario's facts, some of them delivered twice."""
    order = list(draw(st.permutations(scenario)))
    for _ in range(draw(st.integers(0, 3))):
        copy = draw(st.sampled_from(scenario))
        order.insert(draw(st.integers(0, len(order))), copy)
    return order


def check(kind: str, scenario: list[Fact], expected: tuple[str, str | None], fallback_to: str | None,
          arrival: list[Fact]) -> None:
    """The scenario in Twilio's order ends as expected, and `arrival` ends the same way."""
    start = started(kind, fallback_to)
    reference = outcome(*deliver(start, scenario))
    assert reference[0][:2] == expected
    assert outcome(*deliver(start, arrival)) == reference


@pytest.mark.parametrize("name", sorted(WARM))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_warm_transfer_ends_as_in_twilios_order(name: str, data: st.DataObject) -> None:
    """Warm: whatever order and repetition the callbacks arrive in, the same outcome and the same requests."""
    scenario, expected = WARM[name]
    check("warm", scenario, expected, None, data.draw(arrivals(scenario)))


@pytest.mark.parametrize("name", sorted(COLD))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_cold_transfer_ends_as_in_twilios_order(name: str, data: st.DataObject) -> None:
    """Cold, with and without a fallback: whatever order and repetition, the same outcome and requests."""
    scenario, expected, fallback_to = COLD[name]
    check("cold", scenario, expected, fallback_to, data.draw(arrivals(scenario)))


def stored(state: Conference, *events: ev.DomainEvent) -> tuple[Conference, list[ev.DomainEvent], list[Effect]]:
    """Store each event with its reactions; the state, every reaction event and every request."""
    reactions: list[ev.DomainEvent] = []
    effects: list[Effect] = []
    for event in events:
        plan, state = planned(state, Plan(events=[event]))
        reactions += plan.events[1:]
        effects += plan.effects
    return state, reactions, effects


def final(state: Conference) -> tuple[str, str | None]:
    transfer = state.transfer("TR1")
    assert transfer is not None
    return transfer.state, transfer.failure_reason


def test_a_target_leave_before_its_join_reads_as_joined_then_left() -> None:
    """The issue's case: the target's participant-leave (answered, hung up) arrives before its join. It had
    joined: the warm transfer consults, then is cancelled (target_left), not failed (left_before_joining);
    the customer comes back to `from` once, and the late join changes nothing."""
    state, events, effects = stored(started("warm", None), dialed(TARGET, 4), leave(TARGET, 6), join(TARGET, 5))
    assert [e.type for e in events] == ["transfer.consulting", "transfer.cancelled"]
    assert final(state) == ("cancelled", "target_left")
    assert effects == [Update("customer", CUST, hold=False)]
    target = state.find(TARGET_LABEL)
    assert target is not None and target.joined_at == at(5) and target.status == "left"


def test_a_leave_of_an_add_that_failed_is_a_failure_not_a_join() -> None:
    """A participant-leave with `participant_add_failed` (the leg never answered) fails the transfer."""
    state, _, effects = stored(started("warm", None), dialed(TARGET, 4), leave(TARGET, 5, "no-answer", ADD_FAILED))
    assert final(state) == ("failed", "no-answer")
    assert effects == [Update("customer", CUST, hold=False)]


def test_a_leave_without_twilios_2023_fields_before_any_join_is_still_left_before_joining() -> None:
    """A leave with neither ParticipantCallStatus nor ReasonParticipantLeft says nothing about a join."""
    bare = ev.ParticipantLeft(conference_sid=CF, call_sid=TARGET, label=TARGET_LABEL, sequence=5, at=at(5),
                              flags=flags(TARGET))
    state, _, _ = stored(started("warm", None), dialed(TARGET, 4), bare)
    assert final(state) == ("failed", "left_before_joining")


def test_a_cancelled_call_alone_decides_nothing_the_leave_that_goes_with_it_does() -> None:
    """The target's `canceled` call status comes first: it may be the conference's end cancelling the add,
    so the transfer waits for the participant-leave, whose reason says the customer's hang-up ended it."""
    state, events, _ = stored(started("warm", None), dialed(TARGET, 4), call(TARGET, "canceled", 2, 6))
    assert events == [] and final(state) == ("dialing", None)
    state, _, _ = stored(state, leave(TARGET, 6, "canceled", ENDED))
    assert final(state) == ("cancelled", "customer_left")


def test_an_outcome_is_revised_by_a_fact_that_came_first_and_arrived_last() -> None:
    """`from` hangs up (6), then the target (8); the target's leave arrives first and cancels the transfer
    (target_left); `from`'s leave then shows `from` had already handed over: the outcome becomes completed,
    and nothing is asked of Twilio twice."""
    state, _, effects = stored(started("warm", None), dialed(TARGET, 4), leave(TARGET, 8))
    assert final(state) == ("cancelled", "target_left")
    state, revised, more = stored(state, leave(FROM, 6))
    assert [e.type for e in revised] == ["transfer.completed"] and final(state) == ("completed", None)
    assert effects + more == [Update("customer", CUST, hold=False)]
    state, again, _ = stored(state, join(TARGET, 5))
    assert again == [] and final(state) == ("completed", None)


def test_an_outcome_a_command_decided_is_never_revised() -> None:
    """A cancel by command stands, whatever arrives after it (its event carries no place in Twilio's order)."""
    state, _, _ = stored(started("warm", None), dialed(TARGET, 4), join(TARGET, 5))
    state, _, _ = stored(state, *tr.plan_cancel(state, "TR1", at(9)).events)
    state, events, _ = stored(state, leave(FROM, 6), leave(TARGET, 7))
    assert events == [] and final(state) == ("cancelled", "cancelled")


def test_a_failure_known_from_a_call_status_only_is_not_undone_by_a_later_hang_up() -> None:
    """The target's `busy` call status fails the transfer; its participant-leave is lost. The customer hanging
    up minutes later (a SequenceNumber, but a later Timestamp) does not turn the failure into customer_left."""
    state, _, _ = stored(started("warm", None), dialed(TARGET, 4), call(TARGET, "busy", 2, 5))
    assert final(state) == ("failed", "busy")
    state, events, _ = stored(state, leave(CUST, 20), end(21))
    assert events == [] and final(state) == ("failed", "busy")


def test_a_target_whose_callsid_comes_after_the_transfer_ended_is_hung_up_once() -> None:
    """The customer hangs up before the target's CallSid is known; the leg is hung up when it is learned
    (here from its ringing callback), and not again when the dial's answer arrives."""
    state, _, effects = stored(started("warm", None), leave(CUST, 5), call(TARGET, "ringing", 1, 5),
                               dialed(TARGET, 5))
    assert final(state) == ("cancelled", "customer_left")
    assert [type(e).__name__ for e in effects] == ["HangUp"]
    transfer = state.transfer("TR1")
    assert transfer is not None and transfer.target_call_sid == TARGET


def test_transfer_moves_keep_their_place_in_twilios_order_through_the_codec() -> None:
    """A move's `order` survives encoding (JSON gives a list back); one stored before moves were placed has
    none, and decodes with none."""
    from confctl.domain.codec import decode, encode

    moved = ce.TransferCancelled(transfer_id="TR1", at=at(6), reason="target_left", order=(6, -1))
    assert decode(*encode(moved)) == moved
    old = decode("transfer.cancelled", {"transfer_id": "TR1", "at": at(6), "reason": "customer_left"})
    assert isinstance(old, ce.TransferCancelled) and old.order is None


def test_a_new_leg_reusing_an_ended_transfers_label_is_left_alone() -> None:
    """A warm transfer to agent-1 fails (busy); an agent later added as `agent-1` keeps its call when its dial
    is answered: only the legs a transfer dialed are hung up after it ended, and the transfer keeps its CallSid."""
    from confctl.domain import commands as cmd

    state, _, _ = stored(started("warm", None), dialed(TARGET, 4), leave(TARGET, 5, "busy", ADD_FAILED))
    assert final(state) == ("failed", "busy")
    plan, label = cmd.plan_add(state, cmd.AddParticipant(to="client:c", role="agent", label=TARGET_LABEL), at(6))
    state, _, _ = stored(state, *plan.events)
    state, _, effects = stored(state, ce.ParticipantDialed(label=label, call_sid="CA9", at=at(6)))
    assert effects == []
    transfer = state.transfer("TR1")
    assert transfer is not None and transfer.target_call_sid == TARGET
