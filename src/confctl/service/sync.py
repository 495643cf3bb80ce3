"""`sync`: re-read a conference from Twilio and record every drift from our state as a correction event.

This is how a crash between a command's intent and its outcome is repaired: from Twilio's facts, not guesses.
"""

from __future__ import annotations

from datetime import datetime

from confctl.domain import command_events as ce
from confctl.domain.effects import Plan
from confctl.domain.events import DomainEvent, ParticipantFlags
from confctl.domain.lost_callbacks import ring_over
from confctl.domain.model import Conference
from confctl.service.conferences import ConferenceRepository
from confctl.service.gateway import ConferenceSnapshot, ParticipantSnapshot, TwilioGateway


def _flags(p: ParticipantSnapshot) -> ParticipantFlags:
    return ParticipantFlags(muted=p.muted, hold=p.hold, coaching=p.coaching,
                            call_sid_to_coach=p.call_sid_to_coach if p.coaching else None,
                            end_conference_on_exit=p.end_conference_on_exit,
                            start_conference_on_enter=p.start_conference_on_enter)


def corrections(state: Conference, conference: ConferenceSnapshot | None,
                live: list[ParticipantSnapshot], at: str) -> tuple[list[DomainEvent], list[str]]:
    """The events that bring `state` in line with Twilio, and a sentence for each."""
    events: list[DomainEvent] = []
    notes: list[str] = []
    twilio_status = conference.status if conference else "completed"
    if twilio_status != state.status and not (twilio_status == "init" and state.status == "in-progress"):
        events.append(ce.ConferenceCorrected(conference_sid=conference.sid if conference else None,
                                             status=twilio_status, at=at))
        notes.append(f"conference status {state.status} -> {twilio_status}")
    # The Participants list also holds legs still queued, connecting or ringing: only `connected` ones are in
    # the conference (taking a ringing leg for a joined one would start a transfer's consult early).
    present = {p.call_sid: p for p in live if p.status == "connected"}
    listed, now = {p.call_sid for p in live}, datetime.fromisoformat(at)
    for ours in state.participants:
        if ours.is_connected and ours.call_sid not in present:
            events.append(ce.ParticipantCorrected(call_sid=ours.call_sid or "", label=ours.label, present=False,
                                                  after_sequence=state.last_sequence, at=at))
            notes.append(f"{ours.label} is no longer in the conference")
        elif ours.call_sid not in listed and ring_over(ours, now):
            # Still dialing here, past its ring time, and not even ringing at Twilio: its end was lost. (Only once
            # its ring time is over: a leg dialed while Twilio was being read is not in the list yet.)
            events.append(ce.ParticipantCorrected(call_sid=ours.call_sid or "", label=ours.label, present=False,
                                                  after_sequence=state.last_sequence, at=at))
            notes.append(f"{ours.label} is no longer dialing")
    for sid, theirs in present.items():
        ours_leg = state.by_call_sid(sid)
        flags = _flags(theirs)
        label = theirs.label or (ours_leg.label if ours_leg else sid)
        if ours_leg is None or not ours_leg.is_connected:
            notes.append(f"{label} is in the conference")
        elif (ours_leg.muted, ours_leg.hold, ours_leg.coaching, ours_leg.end_conference_on_exit) != (
                flags.muted, flags.hold, flags.coaching, flags.end_conference_on_exit):
            notes.append(f"{label} flags muted={flags.muted} hold={flags.hold} coaching={flags.coaching} "
                         f"end_on_exit={flags.end_conference_on_exit}")
        elif flags.coaching and ours_leg.call_sid_to_coach != flags.call_sid_to_coach:
            # Callbacks never say whom a coach whispers to: Twilio's list is where a drift of it shows.
            coached = state.by_call_sid(flags.call_sid_to_coach)
            notes.append(f"{label} coaches {coached.label if coached else flags.call_sid_to_coach}")
        else:
            continue
        events.append(ce.ParticipantCorrected(call_sid=sid, label=label, present=True,
                                              after_sequence=state.last_sequence, at=at, flags=flags))
    return events, notes


async def synchronize(conferences: ConferenceRepository, gateway: TwilioGateway, state: Conference,
                      actor: str, at: str, causation: str = "sync", attempts: int = 3,
                      trigger: str | None = None) -> list[str]:
    """Read Twilio, store the corrections (with their reactions), return what was corrected.

    Twilio's answer is compared with the state it was read against: when a callback came in meanwhile, Twilio's
    answer may predate it (a leg that just joined would be "corrected" away), so Twilio is read again, up to
    `attempts` times; then nothing is stored (the next reconciliation tries again). `trigger` (reconciliation
    only) is stored in the corrections' metadata: what made confctl look."""
    metadata = {"actor": actor, "causation": causation, **({"trigger": trigger} if trigger else {})}
    for _ in range(attempts):
        notes, moved_to = await _synchronize_once(conferences, gateway, state, at, metadata)
        if moved_to is None:
            return notes
        state = moved_to
    return []


async def _synchronize_once(conferences: ConferenceRepository, gateway: TwilioGateway, state: Conference, at: str,
                            metadata: dict[str, str]) -> tuple[list[str], Conference | None]:
    """One read of Twilio and its corrections; (notes, None), or ([], the newer state) when a fact was stored
    while Twilio was read."""
    snapshot = (await gateway.fetch_conference(state.twilio_sid) if state.twilio_sid
                else await gateway.find_conference(state.id))
    live = await gateway.list_participants(snapshot.sid) if snapshot and snapshot.status != "completed" else []
    notes: list[str] = []
    moved = False
    if not corrections(state, snapshot, live, at)[0]:
        return [], None  # no drift: nothing to store (and no append)

    def decide(current: Conference) -> Plan:
        nonlocal moved
        moved = current.last_sequence != state.last_sequence
        if moved:
            return Plan(events=[])
        events, found = corrections(current, snapshot, live, at)
        notes[:] = found
        return Plan(events=events)

    change = await conferences.change(state.id, decide, metadata=metadata)
    return (notes, None) if not moved else ([], change.state)
