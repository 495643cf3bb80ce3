"""Warm and cold transfers: the requests and commands, and how a transfer reacts to Twilio's facts.

Warm: customer on hold (music) → target dialed → `consulting` when it joins → `completed` (customer off hold,
`from` leaves) or `cancelled`. Target busy / no-answer / failed → `failed`, customer back with `from`.
Cold: `from` leaves at once, customer on hold while the target rings, `completed` when it joins; a failed
target is replaced by `fallback_to` if given, else `failed` with the customer left on hold music.
Transfers move on Twilio's facts (callbacks), never on timers guessing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from confctl.domain import command_events as ce
from confctl.domain import errors as de
from confctl.domain import events as ev
from confctl.domain.addresses import check_address
from confctl.domain.commands import connected, ensure_open, free_label
from confctl.domain.effects import Dial, Effect, HangUp, Kick, Plan, Update
from confctl.domain.model import Conference, Participant, Transfer
from confctl.domain.policy import end_on_exit_fix, end_on_exit_for


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
        ce.ParticipantDialRequested(label=label, role=cmd.target_role, to=cmd.to, at=at, transfer_id=transfer_id),
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
    return Plan(events=[ce.TransferCompleted(transfer_id=transfer_id, at=at, reason="completed")], effects=effects)


def plan_cancel(conference: Conference, transfer_id: str, at: str) -> Plan:
    """Dialing or consulting: the target leg ends and the customer comes back to `from`."""
    transfer = _transfer(conference, transfer_id)
    if not transfer.is_active:
        raise de.InvalidTransition(f"transfer {transfer_id} is already {transfer.state}")
    effects = _end_leg(conference.find(transfer.target_label))
    if _from_is_connected(conference, transfer):
        effects += _unhold_customer(conference)
    return Plan(events=[ce.TransferCancelled(transfer_id=transfer_id, at=at, reason="cancelled")], effects=effects)


FAILED = frozenset({"busy", "no-answer", "failed", "canceled"})


def _target_failure(conference: Conference, transfer: Transfer, event: ev.DomainEvent) -> str | None:
    """Why the target leg failed to join, if this fact says it did."""
    target = conference.find(transfer.target_label)
    if target is None or target.joined_at is not None:
        return None
    if isinstance(event, ce.ParticipantDialFailed) and event.label == transfer.target_label:
        return f"dial_failed: {event.reason}"
    about = getattr(event, "call_sid", None)
    if target.call_sid is None or about != target.call_sid:
        return None
    if isinstance(event, ev.CallStatusChanged) and event.status in FAILED:
        return event.status
    if isinstance(event, ev.ParticipantLeft):
        return event.call_status if event.call_status in FAILED else "left_before_joining"
    return None


def _joined(event: ev.DomainEvent) -> TypeGuard[ev.ParticipantJoined | ce.ParticipantCorrected]:
    """A leg's arrival, from its callback or from `sync` (the callback was lost: Twilio says it is there)."""
    return isinstance(event, ev.ParticipantJoined) or (isinstance(event, ce.ParticipantCorrected) and event.present)


def react(conference: Conference, event: ev.DomainEvent) -> Plan:
    """What the active transfer does about a fact just stored (`conference` is the state after it)."""
    transfer = conference.active_transfer
    if transfer is None:
        return Plan()
    tid, at = transfer.id, getattr(event, "at", "")
    target = conference.find(transfer.target_label)
    customer = next((p for p in conference.participants if p.role == "customer"), None)
    if isinstance(event, ev.ConferenceEnded) or (
        customer is not None and customer.left_at is not None and getattr(event, "call_sid", None) == customer.call_sid
    ):
        return Plan(events=[ce.TransferCancelled(transfer_id=tid, at=at, reason="customer_left")],
                    effects=[HangUp(target.label, target.call_sid)] if target and target.is_live and target.call_sid
                    else [])
    if isinstance(event, ce.ParticipantDialed) and event.label == transfer.target_label:
        return Plan()
    if _joined(event) and target is not None and target.is_connected and event.call_sid == target.call_sid:
        if transfer.state != "dialing":
            return Plan()
        if transfer.kind == "warm" and _from_is_connected(conference, transfer):
            return Plan(events=[ce.TransferConsulting(transfer_id=tid, target_call_sid=event.call_sid, at=at)])
        return Plan(events=[ce.TransferCompleted(transfer_id=tid, at=at, reason="target_joined")],
                    effects=_unhold_customer(conference))
    source = conference.find(transfer.from_label)
    if (transfer.kind == "warm" and transfer.state == "consulting" and source is not None
            and source.left_at is not None and getattr(event, "call_sid", None) == source.call_sid):
        return Plan(events=[ce.TransferCompleted(transfer_id=tid, at=at, reason="from_left")],
                    effects=_unhold_customer(conference))
    if (transfer.state == "consulting" and target is not None and target.left_at is not None
            and getattr(event, "call_sid", None) == target.call_sid):
        effects = _unhold_customer(conference) if _from_is_connected(conference, transfer) else []
        return Plan(events=[ce.TransferCancelled(transfer_id=tid, at=at, reason="target_left")], effects=effects)
    failure = _target_failure(conference, transfer, event) if transfer.state == "dialing" else None
    if failure is None:
        return Plan()
    if transfer.kind == "cold" and transfer.fallback_to:
        label = free_label(conference, None, f"{transfer.target_role}-fallback")
        return Plan(
            events=[ce.TransferFallbackDialed(transfer_id=tid, to=transfer.fallback_to, target_label=label,
                                              reason=failure, at=at),
                    ce.ParticipantDialRequested(label=label, role=transfer.target_role, to=transfer.fallback_to,
                                                at=at, transfer_id=tid)],
            effects=[_dial(label, transfer.fallback_to, transfer.target_role, None, tid)],
            transfer_id=tid,
        )
    # Warm: back to `from`. Cold, or `from` gone: the customer stays on hold music, never in silence.
    effects = _unhold_customer(conference) if transfer.kind == "warm" and _from_is_connected(conference, transfer) \
        else []
    return Plan(events=[ce.TransferFailed(transfer_id=tid, at=at, reason=failure)], effects=effects)
