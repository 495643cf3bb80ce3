"""Warm and cold transfers: the requests and commands, and how a transfer reacts to Twilio's facts.

Warm: customer on hold (music) → target dialed → `consulting` when it joins → `completed` (customer off hold,
`from` leaves) or `cancelled`. Target busy / no-answer / failed → `failed`, customer back with `from`.
Cold: `from` leaves at once, customer on hold while the target rings, `completed` when it joins; a failed
target is replaced by `fallback_to` if given, else `failed` with the customer left on hold music.
Transfers move on Twilio's facts (callbacks), never on timers guessing them, and in Twilio's order, whatever
order the callbacks arrive in (`transfer_course.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from confctl.domain import command_events as ce
from confctl.domain import errors as de
from confctl.domain import events as ev
from confctl.domain.addresses import check_address
from confctl.domain.commands import connected, ensure_open, free_label
from confctl.domain.effects import Dial, Effect, HangUp, Kick, Plan, Update
from confctl.domain.model import Conference, Participant, Transfer
from confctl.domain.policy import end_on_exit_fix, end_on_exit_for
from confctl.domain.transfer_course import UNPLACED, Step, course, target_of, there_at


@dataclass(frozen=True, slots=True)
class StartTransfer:
    """POST transfers."""

    kind: str
    from_label: str
    to: str
    label: str | None = None
    target_role: str = "agent"
    timeout_s: int | None = None
    fallback_to: str | None = None


def customer_leg(conference: Conference) -> Participant:
    """The customer, in the conference now."""
    leg = next((p for p in conference.participants if p.role == "customer" and p.is_connected), None)
    if leg is None or leg.call_sid is None:
        raise de.ParticipantNotConnected("the customer is not connected")
    return leg


def _dial(label: str, to: str, role: str, timeout_s: int | None, transfer_id: str) -> Dial:
    return Dial(label=label, to=to, role=role, timeout_s=timeout_s, transfer_id=transfer_id,
                end_conference_on_exit=end_on_exit_for(role))


def plan_transfer(conference: Conference, cmd: StartTransfer, transfer_id: str, at: str,
                  hold_url: str | None) -> Plan:
    """Start a transfer: end-on-exit flags first, then hold the customer, (cold) drop `from`, dial the target."""
    ensure_open(conference)
    if cmd.kind not in ("warm", "cold"):
        raise de.InvalidRequest("kind is warm or cold")
    if cmd.target_role not in ("agent", "external"):
        raise de.InvalidRequest("target_role is agent or external")
    if cmd.fallback_to is not None and cmd.kind != "cold":
        raise de.InvalidRequest("fallback_to applies to cold transfers only")
    check_address(cmd.to)
    if cmd.fallback_to is not None:
        check_address(cmd.fallback_to, "fallback_to")
    active = conference.active_transfer
    if active is not None:
        raise de.TransferInProgress(f"transfer {active.id} is {active.state}; one at a time per conference")
    source = connected(conference, cmd.from_label)
    if source.role == "customer":
        raise de.InvalidRequest("`from` is the agent handing the customer over, not the customer")
    customer = customer_leg(conference)
    assert customer.call_sid is not None
    assert source.call_sid is not None
    label = free_label(conference, cmd.label, cmd.target_role)
    events: list[ev.DomainEvent] = [
        ce.TransferRequested(transfer_id=transfer_id, kind=cmd.kind, from_label=source.label, to=cmd.to,
                             target_label=label, target_role=cmd.target_role, at=at, fallback_to=cmd.fallback_to),
        ce.ParticipantDialRequested(label=label, role=cmd.target_role, to=cmd.to, at=at, transfer_id=transfer_id,
                                    timeout_s=cmd.timeout_s),
    ]
    # Every leg gets its policy flag before the customer is held: an agent that joined elsewhere with
    # end-on-exit set must not end the customer's call by leaving mid-transfer.
    legs = [customer, source, *(p for p in conference.participants if p.is_connected and p not in (customer, source))]
    effects: list[Effect] = [fix for fix in map(end_on_exit_fix, legs) if fix]
    if not customer.hold:
        effects.append(Update(customer.label, customer.call_sid, hold=True, hold_url=hold_url))
    if cmd.kind == "cold":
        effects.append(Kick(source.label, source.call_sid))
    effects.append(_dial(label, cmd.to, cmd.target_role, cmd.timeout_s, transfer_id))
    return Plan(events=events, effects=effects, transfer_id=transfer_id)


def _transfer(conference: Conference, transfer_id: str) -> Transfer:
    ensure_open(conference)
    transfer = conference.transfer(transfer_id)
    if transfer is None:
        raise de.TransferNotFound(f"no transfer {transfer_id!r}")
    return transfer


def _unhold_customer(conference: Conference) -> list[Effect]:
    customer = next((p for p in conference.participants if p.role == "customer" and p.is_connected), None)
    if customer is None or customer.call_sid is None:
        return []
    return [Update(customer.label, customer.call_sid, hold=False)]


def _end_leg(leg: Participant | None) -> list[Effect]:
    if leg is None or not leg.is_live or leg.call_sid is None:
        return []
    return [Kick(leg.label, leg.call_sid) if leg.is_connected else HangUp(leg.label, leg.call_sid)]


def _from_is_connected(conference: Conference, transfer: Transfer) -> bool:
    source = conference.find(transfer.from_label)
    return source is not None and source.is_connected


def plan_complete(conference: Conference, transfer_id: str, at: str) -> Plan:
    """Warm, consulting: the customer comes off hold with the target and `from` leaves."""
    transfer = _transfer(conference, transfer_id)
    if transfer.kind != "warm" or transfer.state != "consulting":
        raise de.InvalidTransition(f"a {transfer.kind} transfer that is {transfer.state} cannot be completed")
    source = conference.find(transfer.from_label)
    effects = _unhold_customer(conference) + (_end_leg(source) if source and source.is_connected else [])
    return Plan(events=[ce.TransferCompleted(transfer_id=transfer_id, at=at, reason="completed")], effects=effects,
                transfer_id=transfer_id)


def plan_cancel(conference: Conference, transfer_id: str, at: str) -> Plan:
    """Dialing or consulting: the target leg ends and the customer comes back to `from`."""
    transfer = _transfer(conference, transfer_id)
    if not transfer.is_active:
        raise de.InvalidTransition(f"transfer {transfer_id} is already {transfer.state}")
    if transfer.kind == "cold" or not _from_is_connected(conference, transfer):
        # A cold transfer's `from` leaves at once: cancelling would leave the customer alone on hold music.
        raise de.InvalidTransition(f"{transfer.from_label} has left (or is leaving): the customer has nobody to go "
                                   "back to; the transfer completes when the target joins, or fails (fallback_to)")
    effects = _end_leg(conference.find(transfer.target_label)) + _unhold_customer(conference)
    return Plan(events=[ce.TransferCancelled(transfer_id=transfer_id, at=at, reason="cancelled")], effects=effects,
                transfer_id=transfer_id)


_ENDED = {"completed": ce.TransferCompleted, "cancelled": ce.TransferCancelled, "failed": ce.TransferFailed}


def react(conference: Conference, event: ev.DomainEvent) -> Plan:
    """What the newest transfer does about a fact just stored (`conference` is the state after it): the moves
    its course in Twilio's order has that the stored transfer lacks, or, when a fact that came first in Twilio's
    order arrived after the outcome was decided, the outcome that fact makes."""
    transfer = conference.transfers[-1] if conference.transfers else None
    if transfer is None or not (transfer.is_active or transfer.decided_order is not None):
        return Plan()
    steps = course(conference, transfer, getattr(event, "at", ""))
    if transfer.is_active:
        if transfer.state == "consulting" and steps and steps[0].move == "consulting":
            steps = steps[1:]
        # One move at a time: the next is found again once this one is stored (`reactions.planned`).
        return _move(conference, transfer, steps[0]) if steps else Plan()
    outcome = steps[-1] if steps else None
    if (outcome is None or outcome.move not in _ENDED or transfer.decided_order is None
            or outcome.order >= transfer.decided_order or _same(transfer, outcome)):
        return Plan()
    if transfer.decided_order == UNPLACED and outcome.at > (transfer.ended_at or ""):
        # Decided on a call status alone, whose own conference callback may never come (lost): only a fact
        # that Twilio's Timestamp puts no later than it can have come first.
        return Plan()
    # Revised: the outcome decided first planned what it needed (the customer off hold); only a target leg
    # still live after a customer who had already gone is left to end.
    revised = _ENDED[outcome.move](transfer_id=transfer.id, at=outcome.at, reason=outcome.reason,
                                   order=outcome.order)
    return Plan(events=[revised], effects=_hang_up_target(conference, transfer) if outcome.reason == "customer_left"
                else [])


def _same(transfer: Transfer, step: Step) -> bool:
    reason = step.reason if step.move in ("failed", "cancelled") else None
    return (transfer.state, transfer.failure_reason) == (step.move, reason)


def _hang_up_target(conference: Conference, transfer: Transfer) -> list[Effect]:
    target = target_of(conference, transfer)
    return [HangUp(target.label, target.call_sid)] if target and target.is_live and target.call_sid else []


def _move(conference: Conference, transfer: Transfer, step: Step) -> Plan:
    """The events and requests of the transfer's next move."""
    tid = transfer.id
    if step.move == "consulting":
        target = target_of(conference, transfer)
        call_sid = (target.call_sid if target else None) or ""
        return Plan(events=[ce.TransferConsulting(transfer_id=tid, target_call_sid=call_sid, at=step.at,
                                                  order=step.order)])
    if step.move == "fallback":
        assert transfer.fallback_to is not None
        label = free_label(conference, None, f"{transfer.target_role}-fallback")
        return Plan(
            events=[ce.TransferFallbackDialed(transfer_id=tid, to=transfer.fallback_to, target_label=label,
                                              reason=step.reason, at=step.at, order=step.order),
                    ce.ParticipantDialRequested(label=label, role=transfer.target_role, to=transfer.fallback_to,
                                                at=step.at, transfer_id=tid)],
            effects=[_dial(label, transfer.fallback_to, transfer.target_role, None, tid)],
            transfer_id=tid,
        )
    ended = _ENDED[step.move](transfer_id=tid, at=step.at, reason=step.reason, order=step.order)
    return Plan(events=[ended], effects=_outcome_effects(conference, transfer, step))


def _outcome_effects(conference: Conference, transfer: Transfer, step: Step) -> list[Effect]:
    """What an outcome asks of Twilio, as things stood at its place in Twilio's order (a request about a leg
    already known to be gone is not sent)."""
    if step.reason == "customer_left":
        return _hang_up_target(conference, transfer)  # never leave the target ringing for nobody
    if step.move == "completed":
        return _unhold_customer(conference)
    # Back to `from` if it was still there; a cold transfer leaves the customer on hold music, never in silence.
    if step.move == "failed" and transfer.kind != "warm":
        return []
    source = conference.find(transfer.from_label)
    return _unhold_customer(conference) if there_at(source, step.order) else []
