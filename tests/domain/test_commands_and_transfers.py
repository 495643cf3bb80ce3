"""Command preconditions and transfer reactions, on folded states (pure: no I/O)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from confctl.domain import command_events as ce
from confctl.domain import commands as cmd
from confctl.domain import errors as de
from confctl.domain import events as ev
from confctl.domain import transfers as tr
from confctl.domain.effects import Dial, HangUp, Kick, Plan, Update
from confctl.domain.evolve import evolve, fold
from confctl.domain.model import Conference
from confctl.domain.reactions import with_reactions

AT = "2026-11-25T12:00:00+00:00"
CF = "CF1"


def joined(sid: str, label: str, seq: int, **flags: bool) -> ev.ParticipantJoined:
    return ev.ParticipantJoined(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=AT,
                                flags=ev.ParticipantFlags(**flags))  # type: ignore[arg-type]


def left(sid: str, label: str, seq: int, status: str = "completed") -> ev.ParticipantLeft:
    return ev.ParticipantLeft(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=AT,
                              flags=ev.ParticipantFlags(), reason="participant_hung_up", call_status=status)


def live_call() -> Conference:
    """Customer and agent-a talking."""
    return fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid="CA1", caller="+15550001111", called="+15550002222", record=False,
                             at=AT),
        joined("CA1", "customer", 1, end_conference_on_exit=True),
        joined("CA2", "agent-a", 2),
        ev.ConferenceStarted(conference_sid=CF, sequence=3, at=AT),
    ])


def unplaced(event: ev.DomainEvent) -> ev.DomainEvent:
    """A transfer's final event without its place in Twilio's order (test_transfer_order.py checks those)."""
    return replace(event, order=None) if isinstance(event, ce.TransferEnded) else event


def apply(state: Conference, plan_events: list[ev.DomainEvent]) -> Conference:
    for e in plan_events:
        state = evolve(state, e)
    return state


def test_add_participant_preconditions() -> None:
    """Bad address 422, modes for non-supervisors 422, taken label 409, coach target not connected 409."""
    state = live_call()
    with pytest.raises(de.InvalidAddress):
        cmd.plan_add(state, cmd.AddParticipant(to="12345", role="agent"), AT)
    with pytest.raises(de.NotASupervisor):
        cmd.plan_add(state, cmd.AddParticipant(to="client:b", role="agent", mode="coach"), AT)
    with pytest.raises(de.LabelTaken):
        cmd.plan_add(state, cmd.AddParticipant(to="client:b", role="agent", label="agent-a"), AT)
    with pytest.raises(de.CoachTargetNotConnected):
        cmd.plan_add(state, cmd.AddParticipant(to="client:s", role="supervisor", mode="coach", coach="ghost"), AT)
    with pytest.raises(de.ConferenceNotFound):
        cmd.plan_add(Conference(id="x"), cmd.AddParticipant(to="client:b", role="agent"), AT)


def test_supervisor_modes_dial_with_the_right_flags() -> None:
    """monitor dials muted; coach dials coaching the agent's call; default labels are free."""
    state = live_call()
    plan, label = cmd.plan_add(state, cmd.AddParticipant(to="client:s", role="supervisor"), AT)
    assert label == "supervisor-1"
    assert plan.effects == [Dial(label="supervisor-1", to="client:s", role="supervisor", muted=True)]
    plan, _ = cmd.plan_add(state, cmd.AddParticipant(to="client:s", role="supervisor", coach="agent-a"), AT)
    dial = plan.effects[0]
    assert isinstance(dial, Dial) and dial.coaching and dial.call_sid_to_coach == "CA2" and not dial.muted


def test_hold_and_mute_need_a_joined_leg() -> None:
    """A leg that left cannot be held: participant_not_connected; unknown: participant_not_found."""
    state = apply(live_call(), [left("CA2", "agent-a", 4)])
    with pytest.raises(de.ParticipantNotConnected):
        cmd.plan_change(state, "agent-a", cmd.ChangeParticipant(hold=True), AT, None)
    with pytest.raises(de.ParticipantNotFound):
        cmd.plan_change(state, "nobody", cmd.ChangeParticipant(hold=True), AT, None)
    with pytest.raises(de.NotASupervisor):
        cmd.plan_change(live_call(), "agent-a", cmd.ChangeParticipant(mode="barge"), AT, None)


def test_end_on_exit_is_put_right_before_a_hold() -> None:
    """A customer whose leg lacks end-on-exit gets it set before the hold, never after."""
    state = fold("room-CA1", [joined("CA1", "customer", 1), ev.ConferenceStarted(conference_sid=CF, sequence=2,
                                                                                 at=AT)])
    plan = cmd.plan_change(state, "customer", cmd.ChangeParticipant(hold=True), AT, "https://music")
    assert plan.effects == [
        Update("customer", "CA1", end_conference_on_exit=True),
        Update("customer", "CA1", hold=True, hold_url="https://music"),
    ]


def warm_transfer(state: Conference) -> tuple[Conference, str]:
    plan = tr.plan_transfer(state, tr.StartTransfer(kind="warm", from_label="agent-a", to="client:b"), "TR1", AT,
                            None)
    assert plan.effects == [Update("customer", "CA1", hold=True), Dial(label="agent-1", to="client:b", role="agent",
                                                                       transfer_id="TR1")]
    return apply(state, plan.events), "agent-1"


def test_one_transfer_at_a_time() -> None:
    """A second transfer while one is active is transfer_in_progress."""
    state, _ = warm_transfer(live_call())
    with pytest.raises(de.TransferInProgress):
        tr.plan_transfer(state, tr.StartTransfer(kind="cold", from_label="agent-a", to="client:c"), "TR2", AT, None)


def test_warm_transfer_follows_twilio_facts() -> None:
    """Target joins → consulting; complete unholds the customer and kicks `from`."""
    state, target = warm_transfer(live_call())
    state = apply(state, [ce.ParticipantDialed(label=target, call_sid="CA3", at=AT)])
    reacted = with_reactions(state, Plan(events=[joined("CA3", target, 5)]))
    assert [e.type for e in reacted.events] == ["participant.joined", "transfer.consulting"]
    state = apply(state, reacted.events)
    done = tr.plan_complete(state, "TR1", AT)
    assert done.effects == [Update("customer", "CA1", hold=False), Kick("agent-a", "CA2")]
    with pytest.raises(de.InvalidTransition):
        tr.plan_complete(apply(state, done.events), "TR1", AT)


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
def test_warm_target_failure_returns_the_customer_to_from(status: str) -> None:
    """Busy, no-answer or failed → transfer failed and the customer comes off hold."""
    state, target = warm_transfer(live_call())
    state = apply(state, [ce.ParticipantDialed(label=target, call_sid="CA3", at=AT)])
    reacted = with_reactions(state, Plan(events=[ev.CallStatusChanged(call_sid="CA3", status=status, sequence=3,
                                                                      at=AT)]))
    assert unplaced(reacted.events[-1]) == ce.TransferFailed(transfer_id="TR1", at=AT, reason=status)
    assert reacted.effects == [Update("customer", "CA1", hold=False)]


def test_customer_hanging_up_cancels_and_ends_the_ringing_target() -> None:
    """The customer leaves mid-transfer: cancelled, and the ringing target is hung up."""
    state, target = warm_transfer(live_call())
    state = apply(state, [ce.ParticipantDialed(label=target, call_sid="CA3", at=AT)])
    reacted = with_reactions(state, Plan(events=[left("CA1", "customer", 6)]))
    assert unplaced(reacted.events[-1]) == ce.TransferCancelled(transfer_id="TR1", at=AT, reason="customer_left")
    assert reacted.effects == [HangUp(target, "CA3")]


def test_cold_transfer_failure_uses_fallback_then_leaves_customer_on_hold() -> None:
    """Cold: the first failure dials fallback_to; the second fails the transfer with no unhold (music, not silence)."""
    state = live_call()
    plan = tr.plan_transfer(state, tr.StartTransfer(kind="cold", from_label="agent-a", to="client:b",
                                                    fallback_to="+15550009999"), "TR1", AT, None)
    assert [type(e).__name__ for e in plan.effects] == ["Update", "Kick", "Dial"]
    state = apply(state, plan.events)
    state = apply(state, [ce.ParticipantDialed(label="agent-1", call_sid="CA3", at=AT)])
    first = with_reactions(state, Plan(events=[ev.CallStatusChanged(call_sid="CA3", status="busy", sequence=2,
                                                                    at=AT)]))
    assert first.events[1].type == "transfer.fallback_dialed"
    assert first.effects == [Dial(label="agent-fallback-1", to="+15550009999", role="agent", transfer_id="TR1")]
    state = apply(state, first.events)
    state = apply(state, [ce.ParticipantDialed(label="agent-fallback-1", call_sid="CA4", at=AT)])
    second = with_reactions(state, Plan(events=[ev.CallStatusChanged(call_sid="CA4", status="no-answer",
                                                                     sequence=2, at=AT)]))
    assert unplaced(second.events[-1]) == ce.TransferFailed(transfer_id="TR1", at=AT, reason="no-answer")
    assert second.effects == []
    final = apply(state, second.events)
    assert replace(final.transfers[0]).state == "failed"


def test_transfer_puts_every_legs_end_on_exit_right_before_holding() -> None:
    """Legs that joined elsewhere with end-on-exit set get it cleared, and the customer gets it set, before the hold."""
    state = fold("room-CA1", [
        joined("CA1", "customer", 1),
        joined("CA2", "agent-a", 2, end_conference_on_exit=True),
        joined("CA5", "agent-helper", 3, end_conference_on_exit=True),
        ev.ConferenceStarted(conference_sid=CF, sequence=4, at=AT),
    ])
    plan = tr.plan_transfer(state, tr.StartTransfer(kind="warm", from_label="agent-a", to="client:b"), "TR1", AT,
                            None)
    assert plan.effects[:4] == [
        Update("customer", "CA1", end_conference_on_exit=True),
        Update("agent-a", "CA2", end_conference_on_exit=False),
        Update("agent-helper", "CA5", end_conference_on_exit=False),
        Update("customer", "CA1", hold=True),
    ]


def test_a_target_join_learned_from_sync_moves_the_transfer_like_its_callback() -> None:
    """The target's join callback was lost (confctl was down); `sync` finds it in the conference: the warm
    transfer consults, the cold one completes and unholds the customer, as the callback would have made them."""
    warm, target = warm_transfer(live_call())
    warm = apply(warm, [ce.ParticipantDialed(label=target, call_sid="CA3", at=AT)])
    found = ce.ParticipantCorrected(call_sid="CA3", label=target, present=True, after_sequence=4, at=AT)
    assert [e.type for e in with_reactions(warm, Plan(events=[found])).events] == [
        "participant.corrected", "transfer.consulting"]
    cold = live_call()
    plan = tr.plan_transfer(cold, tr.StartTransfer(kind="cold", from_label="agent-a", to="client:c"), "TR2", AT, None)
    cold = apply(cold, plan.events)
    label = cold.transfer("TR2").target_label  # type: ignore[union-attr]
    cold = apply(cold, [ce.ParticipantDialed(label=label, call_sid="CA4", at=AT)])
    found = ce.ParticipantCorrected(call_sid="CA4", label=label, present=True, after_sequence=5, at=AT)
    reacted = with_reactions(cold, Plan(events=[found]))
    assert unplaced(reacted.events[-1]) == ce.TransferCompleted(transfer_id="TR2", at=AT, reason="target_joined")
    assert reacted.effects == [Update("customer", "CA1", hold=False)]
