"""The Participants API rules: who may join (labels, coaching), and how updates apply.

- Labels: at most 128 characters, never shaped like a CallSid, no `/` (also not as `%2F`): 16024 on
  REST, 16023 in TwiML. Unique among a conference's live legs: 16026 on REST, 16025 in TwiML.
- Coaching needs the account's Agent Conference (16000) and a `CallSidToCoach` naming another connected
  participant of the same, in-progress conference (16028 on REST, 13240 in TwiML) that is not on hold (16027).
- Only BeepOnExit, EndConferenceOnExit, Coaching and WaitUrl changes fire `participant-modify`.
- `EndConferenceOnExit` changes are silently ignored while the participant is on hold.

Twilio's error pages give codes, not HTTP statuses: every refusal here is a 400, as Twilio answers
parameter errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confctl.simulator.model import announcements, conferences, media
from confctl.simulator.model.errors import TwilioApiError, bad_request, not_found
from confctl.simulator.model.records import Conference, Participant, ParticipantOptions
from confctl.simulator.model.state import State

NO_AGENT_CONFERENCE = 16000
INVALID_LABEL_TWIML = 16023
INVALID_LABEL = 16024
DUPLICATE_LABEL_TWIML = 16025
DUPLICATE_LABEL = 16026
COACH_TARGET_ON_HOLD = 16027
COACH_TARGET = 16028
COACH_TARGET_TWIML = 13240

MAX_LABEL_CHARS = 128
# The error pages say "CA followed by 32 lowercase hexadecimal characters", yet Twilio's own CallSid
# pattern (the spec's `^CA[0-9a-fA-F]{32}$`) takes either case, and "resembles a CallSid" is not more
# precise: the simulator refuses both cases, the less convenient reading.
_CALL_SID_SHAPED = re.compile(r"^CA[0-9a-fA-F]{32}$")


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
    hold_method: str | None = None
    wait_method: str | None = None
    announce_url: str | None = None  # an announcement to play to the participant (`announcements.py`)
    announce_method: str = "POST"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why Twilio refuses a join or a change: its error code and a message."""

    code: int
    message: str


def find(conference: Conference, call_sid_or_label: str) -> Participant:
    """A live participant by CallSid or by label (Twilio accepts either in the path).

    A path label with `/` (sent as %2F) finds nobody, since no label may hold one: 20404. Twilio's
    pages do not say whether the path itself answers 16024.
    """
    participant = conference.participants.get(call_sid_or_label)
    if participant is None:
        participant = next((p for p in conference.participants.values() if p.label == call_sid_or_label), None)
    if participant is None:
        raise not_found(f"/Conferences/{conference.sid}/Participants/{call_sid_or_label}.json")
    return participant


def label_problem(label: str | None) -> str | None:
    """Why Twilio refuses this label (errors 16023/16024), or None when it is acceptable."""
    if label is None:
        return None
    if len(label) > MAX_LABEL_CHARS:
        return f"Participant label is longer than {MAX_LABEL_CHARS} characters"
    if _CALL_SID_SHAPED.match(label):
        return "Participant label must not be a CallSid"
    if "/" in label or "%2f" in label.lower():
        return "Participant label must not contain '/' (nor %2F)"
    return None


def coaching_problem(
    state: State, conference: Conference | None, coach: Participant | None, target_sid: str | None
) -> Refusal | None:
    """Why coaching `target_sid` is refused (REST codes; TwiML maps 16028 to 13240), or None."""
    if not state.agent_conference:
        return Refusal(NO_AGENT_CONFERENCE, "Whisper is only available on Agent Conference")
    if not target_sid:
        return Refusal(COACH_TARGET, "CallSidToCoach is required when Coaching is true")
    target = conference.participants.get(target_sid) if conference is not None else None
    # 16028 and 13240 both want the coached call "present in the in-progress conference": a room still in
    # init (nobody has started it) refuses a coach too.
    if (
        conference is None
        or target is None
        or not target.connected
        or target is coach
        or conference.status != "in-progress"
    ):
        return Refusal(COACH_TARGET, f"Call {target_sid} is not a connected participant of this conference")
    if target.hold:
        return Refusal(COACH_TARGET_ON_HOLD, f"Call {target_sid} is on hold: it cannot be coached")
    return None


def check_new(state: State, conference: Conference | None, options: ParticipantOptions) -> None:
    """CreateParticipant's checks, before anything is created (`conference` None: not created yet)."""
    problem = label_problem(options.label)
    if problem is not None:
        raise bad_request(INVALID_LABEL, problem)
    if conference is not None and conferences.label_taken(conference, options.label):
        raise bad_request(DUPLICATE_LABEL, f"Participant label {options.label!r} already exists in this conference")
    if options.coaching:
        refusal = coaching_problem(state, conference, None, options.call_sid_to_coach)
        if refusal is not None:
            raise bad_request(refusal.code, refusal.message)


def twiml_join_problem(
    state: State, conference: Conference | None, label: str | None, coach: str | None
) -> Refusal | None:
    """Why `<Dial><Conference>` cannot put the call in (the Dial then fails), or None."""
    problem = label_problem(label)
    if problem is not None:
        return Refusal(INVALID_LABEL_TWIML, problem)
    if conference is not None and conferences.label_taken(conference, label):
        return Refusal(DUPLICATE_LABEL_TWIML, f"Participant label {label!r} is in use by another participant")
    if coach is None:
        return None
    # 16000 and 16027 pages do not say how TwiML fails: the simulator fails the Dial (the less convenient
    # choice, rather than joining without coaching) with the same codes as REST.
    refusal = coaching_problem(state, conference, None, coach)
    if refusal is not None and refusal.code == COACH_TARGET:
        return Refusal(COACH_TARGET_TWIML, f"Invalid whisper SID {coach!r}: not connected to this conference")
    return refusal


def update(state: State, conference: Conference, participant: Participant, changes: ParticipantChanges) -> None:
    """Apply an UpdateParticipant; validation happens before anything changes."""
    if conference.status == "completed":
        raise TwilioApiError(404, 20404, "The conference has ended")
    coaching = participant.coaching if changes.coaching is None else changes.coaching
    target = (changes.call_sid_to_coach or participant.call_sid_to_coach) if coaching else None
    if coaching and (changes.coaching is not None or changes.call_sid_to_coach is not None):
        refusal = coaching_problem(state, conference, participant, target)
        if refusal is not None:
            raise bad_request(refusal.code, refusal.message)

    was_held = participant.hold
    modified = False
    events: list[str] = []
    if changes.muted is not None and changes.muted != participant.muted:
        participant.muted = changes.muted
        events.append("participant-mute" if changes.muted else "participant-unmute")
    if changes.hold_url is not None:
        participant.hold_url = changes.hold_url
    if changes.hold_method is not None:
        participant.hold_method = changes.hold_method
    if changes.wait_method is not None:  # not a participant-modify attribute
        participant.wait_method = changes.wait_method
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
    retargeted = target != participant.call_sid_to_coach
    if coaching != participant.coaching:
        modified = True
    # A new CallSidToCoach while Coaching stays true is not among the attributes the `<Conference>` page
    # lists for participant-modify (BeepOnExit, EndConferenceOnExit, Coaching, WaitUrl): no callback.
    participant.coaching = coaching
    participant.call_sid_to_coach = target
    if changes.beep_on_exit is not None and changes.beep_on_exit != participant.beep_on_exit:
        participant.beep_on_exit = changes.beep_on_exit
        modified = True
    if changes.wait_url is not None and changes.wait_url != participant.wait_url:
        participant.wait_url = changes.wait_url
        modified = True
    if modified:
        events.append("participant-modify")
    if events or retargeted or changes.hold_url is not None:
        participant.date_updated = conference.date_updated = state.now()
    if participant.connected:  # a leg still dialing is not in the room yet: nothing to announce
        for event in events:
            conferences.send(state, conference, event, participant)
        if "participant-hold" in events:
            media.hold(state, conference, participant)  # Twilio fetches the hold music now
    if changes.announce_url is not None:
        announcements.to_participant(state, conference, participant, changes.announce_url, changes.announce_method)
