"""Whom a coach whispers to, when Twilio's callbacks carry `Coaching` but never `CallSidToCoach`."""

from __future__ import annotations

import itertools

import pytest

from confctl.domain import command_events as ce
from confctl.domain import commands as cmd
from confctl.domain import errors as de
from confctl.domain import events as ev
from confctl.domain.audibility import audibility
from confctl.domain.codec import decode, encode
from confctl.domain.evolve import evolve, fold
from confctl.domain.model import Conference

AT = "2026-11-25T12:00:00+00:00"
CF = "CF1"
CUSTOMER, AGENT, BOB, SUE = "CA1", "CA2", "CA3", "CA9"


def seen(cls: type[ev.ParticipantSeen], sid: str, label: str, seq: int, **flags: bool) -> ev.ParticipantSeen:
    """A participant callback as Twilio sends it: flags, and no CallSidToCoach whatever `Coaching` says."""
    return cls(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=AT,
               flags=ev.ParticipantFlags(**flags))  # type: ignore[arg-type]


def sue(cls: type[ev.ParticipantSeen], seq: int, *, coaching: bool, muted: bool = False) -> ev.ParticipantSeen:
    return seen(cls, SUE, "sue", seq, coaching=coaching, muted=muted)


def apply(state: Conference, events: list[ev.DomainEvent]) -> Conference:
    for event in events:
        state = evolve(state, event)
    return state


def live_call(*, bob: bool = False) -> Conference:
    """The customer talking with agent-a (and bob, another agent, when asked)."""
    return fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid=CUSTOMER, caller="+15550001111", called="+15550002222",
                             record=False, at=AT),
        seen(ev.ParticipantJoined, CUSTOMER, "customer", 1, end_conference_on_exit=True),
        seen(ev.ParticipantJoined, AGENT, "agent-a", 2),
        ev.ConferenceStarted(conference_sid=CF, sequence=3, at=AT),
        *([seen(ev.ParticipantJoined, BOB, "bob", 4)] if bob else []),
    ])


def dialed_in(state: Conference, mode: str, coach: str | None = None, *, answer_names: bool = True) -> Conference:
    """sue dialed in `mode` by the real command, Twilio's CreateParticipant answer, then her join callback."""
    plan, _ = cmd.plan_add(state, cmd.AddParticipant(to="client:sue", role="supervisor", label="sue",
                                                     mode=mode, coach=coach), AT)  # type: ignore[arg-type]
    dial = plan.effects[0]
    named = getattr(dial, "call_sid_to_coach", None) if answer_names else None
    answer = ce.ParticipantDialed(label="sue", call_sid=SUE, at=AT, call_sid_to_coach=named)
    seq = state.last_sequence + 1
    return apply(state, [*plan.events, answer, sue(ev.ParticipantJoined, seq, coaching=mode == "coach",
                                                   muted=mode == "monitor")])


def switched(state: Conference, coach: str) -> tuple[list[ev.DomainEvent], ce.ParticipantUpdated]:
    """sue switched to coach `coach`: the intent the command stores, and Twilio's UpdateParticipant answer."""
    plan = cmd.plan_change(state, "sue", cmd.ChangeParticipant(mode="coach", coach=coach), AT, None)
    target = state.find(coach)
    assert target is not None
    answer = ce.ParticipantUpdated(label="sue", call_sid=SUE, after_sequence=state.last_sequence, at=AT,
                                   flags=ev.ParticipantFlags(coaching=True, call_sid_to_coach=target.call_sid))
    return plan.events, answer


def hears(state: Conference) -> dict[str, list[str]]:
    return audibility(state).hears


def coached_by_sue(state: Conference) -> str | None:
    leg = state.find("sue")
    assert leg is not None
    return leg.call_sid_to_coach if leg.coaching else None


@pytest.mark.parametrize("answer_names", [True, False], ids=["answer names it", "log stored before"])
def test_a_coach_dialed_in_keeps_whom_it_coaches_through_a_join_without_call_sid_to_coach(
    answer_names: bool,
) -> None:
    """Dialed in mode coach: the join callback (Coaching=true, no CallSidToCoach) keeps the coached agent from
    the intent and the answer, so only agent-a hears sue."""
    state = dialed_in(live_call(), "coach", "agent-a", answer_names=answer_names)
    assert coached_by_sue(state) == AGENT
    assert hears(state) == {"customer": ["agent-a"], "agent-a": ["customer", "sue"], "sue": ["agent-a", "customer"]}


def test_a_dial_requested_stored_before_the_intent_named_the_call_takes_the_coached_label() -> None:
    """A log whose intent holds only the coached agent's label still folds to that agent's call."""
    state = live_call()
    old_intent = ce.ParticipantDialRequested(label="sue", role="supervisor", to="client:sue", at=AT, mode="coach",
                                             coach="agent-a")
    state = apply(state, [decode(*encode(old_intent)), ce.ParticipantDialed(label="sue", call_sid=SUE, at=AT),
                          sue(ev.ParticipantJoined, 4, coaching=True)])
    assert coached_by_sue(state) == AGENT


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_a_switch_to_coach_is_right_whatever_order_its_answer_and_callbacks_arrive_in(
    order: tuple[int, ...],
) -> None:
    """monitor -> coach: Twilio's answer, a late callback from before the change (Coaching=false) and the
    change's own callbacks (Coaching=true, no CallSidToCoach), stored in any order after the intent, end with
    sue whispering to agent-a only; whom she coaches is never lost on the way."""
    state = dialed_in(live_call(), "monitor")
    intent, answer = switched(state, "agent-a")
    # 5: muted again just before the switch (delivered late); 6, 7: the switch's unmute and modify.
    facts: list[ev.DomainEvent] = [answer, sue(ev.ParticipantMuted, 5, coaching=False, muted=True),
                                   sue(ev.ParticipantUnmuted, 6, coaching=True),
                                   sue(ev.ParticipantModified, 7, coaching=True)]
    state = apply(state, intent)
    for fact in (facts[i] for i in order):
        state = evolve(state, fact)
        leg = state.find("sue")
        assert leg is not None and leg.call_sid_to_coach == AGENT
    assert coached_by_sue(state) == AGENT
    assert hears(state) == {"customer": ["agent-a"], "agent-a": ["customer", "sue"], "sue": ["agent-a", "customer"]}


def test_coaching_false_in_a_callback_clears_whom_it_coached() -> None:
    """Once its coaching was seen, a newer callback with Coaching=false ends it: sue barges (heard by all), and a
    later Coaching=true that confctl never asked for names nobody (heard by nobody, until `sync`)."""
    state = dialed_in(live_call(), "coach", "agent-a")
    state = evolve(state, sue(ev.ParticipantModified, 5, coaching=False))
    leg = state.find("sue")
    assert leg is not None and leg.call_sid_to_coach is None and not leg.coaching
    assert hears(state)["customer"] == ["agent-a", "sue"]
    state = evolve(state, sue(ev.ParticipantModified, 6, coaching=True))
    assert coached_by_sue(state) is None
    assert "sue" not in hears(state)["agent-a"] and "sue" not in hears(state)["customer"]


def test_a_rest_answer_that_stops_coaching_clears_it() -> None:
    """PATCH barge: Twilio's answer (coaching false) clears the coached call."""
    state = dialed_in(live_call(), "coach", "agent-a")
    plan = cmd.plan_change(state, "sue", cmd.ChangeParticipant(mode="barge"), AT, None)
    answer = ce.ParticipantUpdated(label="sue", call_sid=SUE, after_sequence=state.last_sequence, at=AT,
                                   flags=ev.ParticipantFlags())
    state = apply(state, [*plan.events, answer])
    leg = state.find("sue")
    assert leg is not None and leg.call_sid_to_coach is None and leg.mode == "barge"


def test_a_refused_switch_leaves_the_coach_with_whom_twilio_has_it_coach() -> None:
    """Coaching agent-a, a switch to bob that Twilio refuses: a Coaching=true callback meanwhile keeps agent-a."""
    state = dialed_in(live_call(bob=True), "coach", "agent-a")
    intent, _ = switched(state, "bob")
    refused = ce.CommandFailed(command="update_participant", target="sue", reason="16027", at=AT, twilio_code=16027)
    state = apply(state, [*intent, sue(ev.ParticipantModified, 6, coaching=True), refused])
    assert coached_by_sue(state) == AGENT


def test_a_switch_between_agents_follows_twilios_answer() -> None:
    """Coaching agent-a, switched to bob: the answer names bob, and the modify callback after it keeps bob."""
    state = dialed_in(live_call(bob=True), "coach", "agent-a")
    intent, answer = switched(state, "bob")
    state = apply(state, [*intent, answer, sue(ev.ParticipantModified, 6, coaching=True)])
    assert coached_by_sue(state) == BOB
    assert "sue" in hears(state)["bob"] and "sue" not in hears(state)["agent-a"]


def test_sync_names_the_coached_call_and_callbacks_keep_it() -> None:
    """A correction from Twilio's Participants list (coaching bob) is taken; a later Coaching=true keeps it."""
    state = dialed_in(live_call(bob=True), "coach", "agent-a")
    corrected = ce.ParticipantCorrected(call_sid=SUE, label="sue", present=True, after_sequence=state.last_sequence,
                                        at=AT, flags=ev.ParticipantFlags(coaching=True, call_sid_to_coach=BOB))
    state = apply(state, [corrected, sue(ev.ParticipantModified, 6, coaching=True)])
    assert coached_by_sue(state) == BOB


def test_the_new_fields_replay_from_stored_logs() -> None:
    """The intent's and the dial answer's CallSidToCoach survive the codec, and the replay agrees."""
    state = live_call()
    plan, _ = cmd.plan_add(state, cmd.AddParticipant(to="client:sue", role="supervisor", label="sue", mode="coach",
                                                     coach="agent-a"), AT)
    events: list[ev.DomainEvent] = [*plan.events, ce.ParticipantDialed(label="sue", call_sid=SUE, at=AT,
                                                                       call_sid_to_coach=AGENT)]
    assert [decode(*encode(e)) for e in events] == events
    assert isinstance(events[0], ce.ParticipantDialRequested) and events[0].call_sid_to_coach == AGENT


def test_coaching_a_participant_on_hold_is_refused_before_twilio_is_called() -> None:
    """Twilio's 16027: dialing a coach for a held agent, or switching a leg to coach one, is coach_target_on_hold;
    holding an agent who is being coached is not refused (Twilio refuses only the coaching request)."""
    held = apply(live_call(bob=True), [seen(ev.ParticipantHeld, AGENT, "agent-a", 5, hold=True)])
    with pytest.raises(de.CoachTargetOnHold):
        cmd.plan_add(held, cmd.AddParticipant(to="client:sue", role="supervisor", mode="coach", coach="agent-a"), AT)
    monitoring = dialed_in(held, "monitor")
    with pytest.raises(de.CoachTargetOnHold):
        cmd.plan_change(monitoring, "sue", cmd.ChangeParticipant(mode="coach", coach="agent-a"), AT, None)
    coaching_bob = dialed_in(held, "coach", "bob")
    with pytest.raises(de.CoachTargetOnHold):
        cmd.plan_change(coaching_bob, "sue", cmd.ChangeParticipant(coach="agent-a"), AT, None)
    plan = cmd.plan_change(coaching_bob, "bob", cmd.ChangeParticipant(hold=True), AT, None)
    assert [type(e) for e in plan.events] == [ce.ParticipantUpdateRequested]
