"""Everything the domain does on its own when a fact is stored: transfers move, stray legs end.

`with_reactions` extends a plan with the reactions to each of its events, so a fact and the decisions it
triggers are stored in one append: a crash can never keep the one without the other.
"""

from __future__ import annotations

from confctl.domain import events as ev
from confctl.domain.effects import EndConference, HangUp, Plan
from confctl.domain.evolve import evolve
from confctl.domain.model import Conference
from confctl.domain.transfers import react as transfer_reaction


def _late_call_sid_of_an_ended_transfer(before: Conference, conference: Conference) -> Plan:
    """A cancelled or failed transfer's target leg got its CallSid only now (the dial's answer, or a callback,
    came after the transfer ended, so ending it could not name it): hang the leg up, once."""
    ended = {t.id for t in before.transfers if not t.is_active and t.state != "completed"}
    if not ended:
        return Plan()
    # Legs keep their place in the tuple (new ones are appended), so `old` is the same leg before the event.
    return Plan(effects=[
        HangUp(leg.label, leg.call_sid) for leg, old in zip(conference.participants, before.participants, strict=False)
        if leg.transfer_id in ended and old.call_sid is None and leg.call_sid and leg.is_live
    ])


def _only_supervisors_left(conference: Conference, event: ev.DomainEvent) -> Plan:
    """Nobody stays on a call with nobody but supervisors in it."""
    if not isinstance(event, ev.ParticipantLeft | ev.CallStatusChanged) or conference.status != "in-progress":
        return Plan()
    present = [p for p in conference.participants if p.is_connected]
    if present and all(p.role == "supervisor" for p in present):
        return Plan(effects=[EndConference()])
    return Plan()


def react(before: Conference, conference: Conference, event: ev.DomainEvent) -> Plan:
    """The reactions to one stored event (`conference` is the state after it, `before` the one before)."""
    return (transfer_reaction(conference, event) + _late_call_sid_of_an_ended_transfer(before, conference)
            + _only_supervisors_left(conference, event))


def with_reactions(conference: Conference, plan: Plan) -> Plan:
    """`plan` followed by the reactions its events trigger, and theirs, in order."""
    return planned(conference, plan)[0]


def planned(conference: Conference, plan: Plan) -> tuple[Plan, Conference]:
    """`with_reactions`, and the state after every event of the extended plan (folded once, not twice)."""
    events = list(plan.events)
    effects = list(plan.effects)
    transfer_id = plan.transfer_id
    state = conference
    i = 0
    while i < len(events):
        before, state = state, evolve(state, events[i])
        reaction = react(before, state, events[i])
        events.extend(reaction.events)
        effects.extend(reaction.effects)
        transfer_id = transfer_id or reaction.transfer_id
        i += 1
    return Plan(events=events, effects=effects, transfer_id=transfer_id), state
