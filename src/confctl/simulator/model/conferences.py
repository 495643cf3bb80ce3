"""Conference membership: join, start, leave and end, with the conference status callbacks they fire.

Rules (Twilio's `<Conference>` page, webhooks.md): a conference starts once at least two participants
are connected and at least one of them has startConferenceOnEnter; it ends when the last participant
leaves or when a participant with endConferenceOnExit leaves, and then every remaining leg leaves too.
"""

from __future__ import annotations

from confctl.simulator.model import media, recordings
from confctl.simulator.model.clock import rfc2822
from confctl.simulator.model.effects import Callback
from confctl.simulator.model.records import MAX_PARTICIPANTS, Conference, Participant
from confctl.simulator.model.sids import new_sid
from confctl.simulator.model.state import State

# Subscription keyword for each StatusCallbackEvent value.
_KEYWORD = {
    "conference-start": "start",
    "conference-end": "end",
    "participant-join": "join",
    "participant-leave": "leave",
    "participant-mute": "mute",
    "participant-unmute": "mute",
    "participant-hold": "hold",
    "participant-unhold": "hold",
    "participant-modify": "modify",
    "announcement-end": "announcement",
    "announcement-fail": "announcement",
}
_REASON_TEXT = {
    "conference-ended-via-api": "Conference ended via API",
    "last-participant-left": "Last participant left the conference",
    "last-participant-kicked": "Last participant was removed from the conference",
    "participant-with-end-conference-on-exit-left": "Participant with endConferenceOnExit left",
    "participant-with-end-conference-on-exit-kicked": "Participant with endConferenceOnExit was removed",
}


def create(state: State, friendly_name: str) -> Conference:
    """A new conference in `init`, without settings until its first participant connects."""
    now = state.now()
    conference = Conference(
        sid=new_sid("CF", state.rng),
        account_sid=state.account_sid,
        friendly_name=friendly_name,
        date_created=now,
        date_updated=now,
    )
    state.conferences[conference.sid] = conference
    return conference


def label_taken(conference: Conference, label: str | None) -> bool:
    return label is not None and any(p.label == label for p in conference.participants.values())


def is_full(conference: Conference) -> bool:
    """No room for one more leg (Twilio error 16020, "Conference is full").

    Twilio's pages do not say whether legs still ringing take a place: here every live leg does (the
    Participants list shows them), so a room fills sooner, the less convenient reading. Before the first
    leg connects no maxParticipants is bound yet and Twilio's capacity of 250 applies.
    """
    limit = conference.settings.max_participants if conference.settings_bound else MAX_PARTICIPANTS
    return len(conference.participants) >= limit


def twiml_max_participants(value: str | None) -> int | None:
    """`<Conference maxParticipants>`: "positive integer <= 250", default 250; None when invalid (16002).

    (CreateParticipant's MaxParticipants is "from 2 to 250" instead: the REST layer checks that.)
    """
    if value is None:
        return MAX_PARTICIPANTS
    stripped = value.strip()
    if not stripped.isdigit() or not 1 <= int(stripped) <= MAX_PARTICIPANTS:
        return None
    return int(stripped)


def connect(state: State, conference: Conference, participant: Participant) -> None:
    """The participant's leg is in the room: join event, then maybe the conference starts."""
    if not conference.settings_bound:  # the first leg to connect, whichever way it came in, sets them
        conference.settings = participant.settings
        conference.settings_bound = True
    participant.status = "connected"
    participant.date_updated = conference.date_updated = state.now()
    send(state, conference, "participant-join", participant)
    connected = [p for p in conference.participants.values() if p.connected]
    if conference.status == "init" and len(connected) >= 2 and any(p.start_conference_on_enter for p in connected):
        conference.status = "in-progress"
        send(state, conference, "conference-start")
        if conference.settings.record_from_start:
            recordings.start(state, conference)
    if conference.status == "init":
        media.wait(state, conference, participant)  # it waits for the start: Twilio fetches its waitUrl


def remove(
    state: State, conference: Conference, participant: Participant, *, reason: str, call_status: str, kicked: bool
) -> list[Participant]:
    """Take a leg out; returns the other legs that left because the conference ended as a result."""
    was_connected = participant.connected
    _leave(state, conference, participant, reason=reason, call_status=call_status)
    outcome = "kicked" if kicked else "left"
    if was_connected and participant.end_conference_on_exit:
        return end(
            state,
            conference,
            f"participant-with-end-conference-on-exit-{outcome}",
            ending=participant,
            leave_reason="moderator_ended_conference",
        )
    if not conference.participants:
        return end(state, conference, f"last-participant-{outcome}", ending=participant, leave_reason="")
    return []


def end(
    state: State, conference: Conference, reason: str, *, ending: Participant | None, leave_reason: str
) -> list[Participant]:
    """Complete the conference: every remaining leg leaves (returned, so its call can end too)."""
    if conference.status == "completed":
        return []
    remaining = list(conference.participants.values())
    for participant in remaining:
        _leave(state, conference, participant, reason=leave_reason, call_status=_status_on_end(participant))
    conference.status = "completed"
    conference.date_updated = state.now()
    conference.reason_conference_ended = reason
    conference.call_sid_ending_conference = ending.call_sid if ending else None
    extra = [("ReasonConferenceEnded", reason), ("Reason", _REASON_TEXT.get(reason, reason))]
    if ending is not None:
        extra.append(("CallSidEndingConference", ending.call_sid))
        if ending.label is not None:
            extra.append(("ParticipantLabelEndingConference", ending.label))
    recordings.finish_all(state, conference)
    send(state, conference, "conference-end", extra=extra)
    return remaining


def _status_on_end(participant: Participant) -> str:
    """ParticipantCallStatus of a leg the conference's end takes out: its call's status at that moment.

    A dialing leg is canceled and an API-added leg hangs up (completed); a TwiML leg's call goes on with
    the verbs after its `<Dial>`, so it is still in-progress. Twilio's pages list the values, not when
    each is sent; a TwiML leg with nothing after `<Dial>` completes a moment later, but at the leave it
    is in-progress too (the same as a kicked TwiML leg), the less convenient value for a listener.
    """
    if not participant.connected:
        return "canceled"
    return "completed" if participant.via_api else "in-progress"


def _leave(state: State, conference: Conference, participant: Participant, *, reason: str, call_status: str) -> None:
    conference.participants.pop(participant.call_sid, None)
    participant.status = "complete" if participant.connected else "failed"
    participant.date_updated = conference.date_updated = state.now()
    send(
        state,
        conference,
        "participant-leave",
        participant,
        extra=[("ParticipantCallStatus", call_status), ("ReasonParticipantLeft", reason)],
    )


def send(
    state: State,
    conference: Conference,
    event: str,
    participant: Participant | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Send one conference status callback if the conference's (first participant's) settings ask for it."""
    target = conference.settings.status_callback
    if not target.url or _KEYWORD.get(event, event) not in target.events:
        return
    conference.sequence += 1
    params = [
        ("ConferenceSid", conference.sid),
        ("FriendlyName", conference.friendly_name),
        ("AccountSid", conference.account_sid),
        ("SequenceNumber", str(conference.sequence)),
        ("Timestamp", rfc2822(state.now())),
        ("StatusCallbackEvent", event),
    ]
    if participant is not None:
        params += participant_params(participant)
    params += extra or []
    state.emit(Callback("conference-status", target.url, target.method, tuple(params)))


def participant_params(participant: Participant) -> list[tuple[str, str]]:
    def flag(value: bool) -> str:
        return "true" if value else "false"

    params = [
        ("CallSid", participant.call_sid),
        ("Muted", flag(participant.muted)),
        ("Hold", flag(participant.hold)),
        ("Coaching", flag(participant.coaching)),
        ("EndConferenceOnExit", flag(participant.end_conference_on_exit)),
        ("StartConferenceOnEnter", flag(participant.start_conference_on_enter)),
    ]
    if participant.label is not None:
        params.append(("ParticipantLabel", participant.label))
    # No CallSidToCoach: the `<Conference>` page's parameter table has Coaching but not whom; the
    # Participant resource (call_sid_to_coach) is the only place that says.
    return params
