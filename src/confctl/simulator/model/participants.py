"""The Participants API rules: who may join (labels, coaching), and how updates apply.

- Labels are unique among a conference's live participants (Twilio error 16025).
- Coaching needs `CallSidToCoach`, naming a connected participant of the same conference (16028).
- `EndConferenceOnExit` changes are silently ignored while the participant is on hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from confctl.simulator.model import conferences
from confctl.simulator.model.errors import TwilioApiError, bad_request, not_found
from confctl.simulator.model.records import Conference, Participant
from confctl.simulator.model.state import State

DUPLICATE_LABEL = 16025
COACH_TARGET = 16028


@dataclass(frozen=True, slots=True)
class ParticipantChanges:
    """UpdateParticipant form values; None leaves a field unchanged."""

    muted: bool | None = None
    hold: bool | None = None
    hold_url: str | None = None
    wait_url: str | None = None
    beep_on_exit: bool | None = None
    end_conference_on_exit: bool | None = None
    coaching: bool | None = None
    call_sid_to_coach: str | None = None


def find(conference: Conference, call_sid_or_label: str) -> Participant:
    """A live participant by CallSid or by label (Twilio accepts either in the path)."""
    participant = conference.participants.get(call_sid_or_label)
    if participant is None:
        participant = next((p for p in conference.participants.values() if p.label == call_sid_or_label), None)
    if participant is None:
        raise not_found(f"/Conferences/{conference.sid}/Participants/{call_sid_or_label}.json")
    return participant


def check_label(conference: Conference, label: str | None) -> None:
    if conferences.label_taken(conference, label):
        raise bad_request(DUPLICATE_LABEL, f"Participant label {label!r} already exists in this conference")


def check_coach_target(conference: Conference, coach: Participant | None, target_sid: str | None) -> None:
    """Coaching needs a CallSidToCoach naming another connected participant of this conference."""
    if not target_sid:
        raise bad_request(COACH_TARGET, "CallSidToCoach is required when Coaching is true")
    target = conference.participants.get(target_sid)
    if target is None or not target.connected or target is coach:
        raise bad_request(COACH_TARGET, f"Call {target_sid} is not a connected participant of this conference")


def update(state: State, conference: Conference, participant: Participant, changes: ParticipantChanges) -> None:
    """Apply an UpdateParticipant; validation happens before anything changes."""
    if conference.status == "completed":
        raise TwilioApiError(404, 20404, "The conference has ended")
    coaching = participant.coaching if changes.coaching is None else changes.coaching
    target = (changes.call_sid_to_coach or participant.call_sid_to_coach) if coaching else None
    if coaching and (changes.coaching is not None or changes.call_sid_to_coach is not None):
        check_coach_target(conference, participant, target)

    was_held = participant.hold
    modified = False
    events: list[str] = []
    if changes.muted is not None and changes.muted != participant.muted:
        participant.muted = changes.muted
        events.append("participant-mute" if changes.muted else "participant-unmute")
    if changes.hold_url is not None:
        participant.hold_url = changes.hold_url
    if changes.hold is not None and changes.hold != participant.hold:
        participant.hold = changes.hold
        events.append("participant-hold" if changes.hold else "participant-unhold")
    if (
        changes.end_conference_on_exit is not None
        and not was_held  # Twilio silently ignores this change while the participant is on hold
        and changes.end_conference_on_exit != participant.end_conference_on_exit
    ):
        participant.end_conference_on_exit = changes.end_conference_on_exit
        modified = True
    if coaching != participant.coaching or target != participant.call_sid_to_coach:
        participant.coaching = coaching
        participant.call_sid_to_coach = target
        modified = True
    if changes.beep_on_exit is not None and changes.beep_on_exit != participant.beep_on_exit:
        participant.beep_on_exit = changes.beep_on_exit
        modified = True
    if changes.wait_url is not None and changes.wait_url != participant.wait_url:
        participant.wait_url = changes.wait_url
        modified = True
    if modified:
        events.append("participant-modify")
    if events or changes.hold_url is not None:
        participant.date_updated = conference.date_updated = state.now()
    if participant.connected:  # a leg still dialing is not in the room yet: nothing to announce
        for event in events:
            conferences.send(state, conference, event, participant)
