"""How the events of confctl's own commands and transfers change a conference's state."""

from __future__ import annotations

from confctl.domain import command_events as ce
from confctl.domain.coaching import named, stopped
from confctl.domain.evolve import earliest, first, infer_role, on, replace_participant, with_leg_sid
from confctl.domain.frozen import replace
from confctl.domain.model import Conference, Participant, Recording, Transfer


def _leg_for(conference: Conference, label: str, call_sid: str | None = None) -> Participant | None:
    if call_sid is not None:
        found = conference.by_call_sid(call_sid)
        if found is not None:
            return found
    candidate = conference.find(label)
    return candidate if candidate is not None and candidate.is_live else None


@on(ce.ParticipantDialRequested)
def _dial_requested(conference: Conference, e: ce.ParticipantDialRequested) -> Conference:
    participant = Participant(
        label=e.label,
        role=e.role,  # type: ignore[arg-type]
        to=e.to,
        requested_mode=e.mode,  # type: ignore[arg-type]
        requested_coach=e.coach,
        first_seen_at=e.at,
        transfer_id=e.transfer_id,
        timeout_s=e.timeout_s,
    )
    if e.mode == "coach":
        # Logs stored before the intent carried the CallSid name the agent by label (connected when asked).
        coached = conference.find(e.coach) if e.coach else None
        target = e.call_sid_to_coach or (coached.call_sid if coached else None)
        participant = named(participant, target, conference.last_sequence)
    return replace_participant(conference, None, participant)


@on(ce.ParticipantDialed)
def _dialed(conference: Conference, e: ce.ParticipantDialed) -> Conference:
    if conference.by_call_sid(e.call_sid) is not None:
        return conference  # a callback about this leg already attached its CallSid
    leg = _leg_for(conference, e.label)
    if leg is None:
        return conference
    dialed = named(replace(leg, call_sid=e.call_sid), e.call_sid_to_coach, conference.last_sequence)
    return replace_participant(with_leg_sid(conference, leg, e.call_sid), leg, dialed)


@on(ce.ParticipantDialFailed)
def _dial_failed(conference: Conference, e: ce.ParticipantDialFailed) -> Conference:
    leg = _leg_for(conference, e.label)
    if leg is None:
        return conference
    return replace_participant(conference, leg, replace(leg, dial_error=e.reason, left_at=leg.left_at))


@on(ce.ParticipantUpdateRequested)
def _update_requested(conference: Conference, e: ce.ParticipantUpdateRequested) -> Conference:
    leg = conference.by_call_sid(e.call_sid)
    wanted = e.changes.get("call_sid_to_coach")
    # A leg that is not coaching yet may be seen coaching before Twilio's answer is stored (its callback comes
    # first): whom, only the request says. A leg already coaching keeps whom it coaches until Twilio answers,
    # so a refused switch leaves it as Twilio has it.
    if leg is None or leg.coaching or e.changes.get("coaching") is not True or not isinstance(wanted, str):
        return conference
    return replace_participant(conference, leg, named(leg, wanted, conference.last_sequence))


@on(ce.ParticipantUpdated)
def _updated(conference: Conference, e: ce.ParticipantUpdated) -> Conference:
    leg = conference.by_call_sid(e.call_sid)
    if leg is None:
        return conference
    order = (e.after_sequence, 1)
    f = e.flags
    # Whom it coaches only REST answers tell, so that is taken even from an answer a newer callback outranks.
    updated = named(leg, f.call_sid_to_coach, e.after_sequence) if f.coaching else leg
    # Of two REST answers after the same callback, the one stored later is Twilio's newer view (hold, then at
    # once unhold, both answered before any callback): only a strictly newer snapshot is kept over this one.
    if order >= leg.snapshot_order:
        updated = replace(updated, muted=f.muted, hold=f.hold, coaching=f.coaching,
                          end_conference_on_exit=f.end_conference_on_exit, snapshot_order=order,
                          **({} if f.coaching else stopped()))
    return conference if updated is leg else replace_participant(conference, leg, updated)


@on(ce.RecordingUpdated)
def _recording_updated(conference: Conference, e: ce.RecordingUpdated) -> Conference:
    url = conference.recording.url if conference.recording and conference.recording.sid == e.recording_sid else None
    return replace(conference, recording=Recording(sid=e.recording_sid, status=e.status, url=url))


@on(ce.ConferenceCorrected)
def _conference_corrected(conference: Conference, e: ce.ConferenceCorrected) -> Conference:
    if e.status == "completed":
        order = (conference.last_sequence, 1)  # after every callback stored when Twilio was read
        participants = tuple(
            replace(p, left_at=e.at, leave_reason=p.leave_reason or "conference_ended", left_order=order)
            if p.joined_at is not None and p.left_at is None else p
            for p in conference.participants
        )
        return replace(conference, ended_at=conference.ended_at or e.at, end_reason=conference.end_reason or "sync",
                       ended_order=first(conference.ended_order, order),
                       participants=participants, twilio_sid=conference.twilio_sid or e.conference_sid)
    if e.status == "in-progress":
        return replace(conference, started_at=conference.started_at or e.at,
                       twilio_sid=conference.twilio_sid or e.conference_sid)
    return conference


@on(ce.ParticipantCorrected)
def _participant_corrected(conference: Conference, e: ce.ParticipantCorrected) -> Conference:
    leg = conference.by_call_sid(e.call_sid)
    order = (e.after_sequence, 1)
    if not e.present:
        if leg is None or leg.left_at is not None:
            return conference
        return replace_participant(conference, leg, replace(
            leg, left_at=e.at, leave_reason="sync", joined_at=leg.joined_at, left_order=order))
    base = leg or Participant(label=e.label, role=infer_role(conference, e.call_sid, e.label), call_sid=e.call_sid,
                              first_seen_at=e.at)
    f = e.flags
    updated = replace(
        base, joined_at=base.joined_at or e.at, left_at=None if leg is None else leg.left_at,
        muted=f.muted, hold=f.hold, coaching=f.coaching,
        end_conference_on_exit=f.end_conference_on_exit,
        snapshot_order=max(base.snapshot_order, order),
        first_seen_at=earliest(base.first_seen_at, e.at),
        joined_order=base.joined_order if base.joined_at is not None else order,
        **({} if f.coaching else stopped()),
    )
    # Twilio's Participants list names whom it coaches: `sync` repairs that too.
    return replace_participant(conference, leg, named(updated, f.call_sid_to_coach, e.after_sequence)
                               if f.coaching else updated)


# --- transfers ----------------------------------------------------------------------------------------


def _with_transfer(conference: Conference, transfer_id: str, **changes: object) -> Conference:
    return replace(conference, transfers=tuple(
        replace(t, **changes) if t.id == transfer_id else t for t in conference.transfers
    ))


@on(ce.TransferRequested)
def _transfer_requested(conference: Conference, e: ce.TransferRequested) -> Conference:
    transfer = Transfer(
        id=e.transfer_id, kind=e.kind, state="dialing", from_label=e.from_label, to=e.to,  # type: ignore[arg-type]
        target_label=e.target_label, target_role=e.target_role, created_at=e.at,  # type: ignore[arg-type]
        fallback_to=e.fallback_to,
    )
    return replace(conference, transfers=(*conference.transfers, transfer))


@on(ce.TransferConsulting)
def _transfer_consulting(conference: Conference, e: ce.TransferConsulting) -> Conference:
    return _with_transfer(conference, e.transfer_id, state="consulting", target_call_sid=e.target_call_sid,
                          decided_order=e.order)


@on(ce.TransferFallbackDialed)
def _transfer_fallback(conference: Conference, e: ce.TransferFallbackDialed) -> Conference:
    return _with_transfer(conference, e.transfer_id, to=e.to, target_label=e.target_label, target_call_sid=None,
                          fallback_to=None, decided_order=e.order)


def _revises(transfer: Transfer, e: ce.TransferEnded) -> bool:
    """An ended transfer takes a new outcome only from a fact earlier in Twilio's order than the one that
    decided it (that fact arrived late); an outcome a command decided stands."""
    return (not transfer.is_active and e.order is not None and transfer.decided_order is not None
            and tuple(e.order) < transfer.decided_order)


def _ended(state: str) -> object:
    def handler(conference: Conference, e: ce.TransferEnded) -> Conference:
        transfer = conference.transfer(e.transfer_id)
        if transfer is None or not (transfer.is_active or _revises(transfer, e)):
            return conference
        target = conference.find(transfer.target_label)
        return _with_transfer(
            conference, e.transfer_id, state=state, ended_at=e.at,
            failure_reason=e.reason if state in ("failed", "cancelled") else None,
            target_call_sid=transfer.target_call_sid or (target.call_sid if target else None),
            decided_order=e.order,
        )

    return handler


on(ce.TransferCompleted)(_ended("completed"))  # type: ignore[arg-type]
on(ce.TransferCancelled)(_ended("cancelled"))  # type: ignore[arg-type]
on(ce.TransferFailed)(_ended("failed"))  # type: ignore[arg-type]
