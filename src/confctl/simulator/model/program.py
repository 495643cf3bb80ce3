"""TwiML execution for one call: verbs run in order; `<Dial><Conference>` parks the program until the leg
leaves the conference, then the verbs after it run (as Twilio continues after `<Dial>`).

`<Say>`, `<Play>` and `<Pause>` only take simulated time. Nothing runs after `<Hangup>`, and a call whose
program runs out completes.
"""

from __future__ import annotations

from confctl.simulator.model import calls, conferences, media, participants
from confctl.simulator.model.effects import StartTimer
from confctl.simulator.model.records import (
    MAX_PARTICIPANTS,
    Call,
    CallbackTarget,
    ConferenceSettings,
    Participant,
    ParticipantOptions,
)
from confctl.simulator.model.state import State
from confctl.simulator.model.twiml import (
    DialConference,
    Hangup,
    Pause,
    Play,
    Say,
    TwimlError,
    event_list,
    parse_twiml,
    twiml_bool,
)

# TwiML `<Conference statusCallback>` without statusCallbackEvent reports the start and the end.
_DEFAULT_CONFERENCE_EVENTS = frozenset({"start", "end"})
_DEFAULT_RECORDING_EVENTS = frozenset({"completed"})


def load(state: State, call: Call, document: str) -> None:
    """Replace the call's program with this TwiML document and start running it."""
    try:
        verbs = parse_twiml(document)
    except TwimlError:
        # Twilio says "an application error has occurred" and hangs up (error 12100).
        calls.finish(state, call, "completed" if call.answered_at is not None else "failed")
        return
    call.program = verbs
    call.pc = 0
    call.program_id += 1
    run(state, call)


def run(state: State, call: Call) -> None:
    """Execute verbs from the program counter until one takes time, joins a conference or ends the call."""
    while not call.ended and call.pc < len(call.program):
        verb = call.program[call.pc]
        call.pc += 1
        if isinstance(verb, Hangup):
            calls.finish(state, call, "completed")
            return
        if call.status != "in-progress":
            calls.set_status(state, call, "in-progress")  # an inbound call is answered by its first verb
        if isinstance(verb, Say | Play | Pause):
            _wait(state, call, verb.seconds)
            return
        if isinstance(verb, DialConference) and _join(state, call, verb):
            return
        # Unsupported verbs and failed dials fall through to the next verb.
    if not call.ended and call.conference_sid is None:
        calls.finish(state, call, "completed")


def _wait(state: State, call: Call, seconds: float) -> None:
    program_id = call.program_id

    def resume() -> None:
        if call.program_id == program_id:
            run(state, call)

    state.emit(StartTimer(calls.twiml_timer_key(call), seconds, resume))


def _join(state: State, call: Call, verb: DialConference) -> bool:
    """Enter the conference, or fail the `<Dial>` (logged as an alert) so the next verb runs.

    Twilio documents the fall-through for 16025 ("continues to the next TwiML verb") and 13240 ("fails
    to the action URL"; without `action`, the document goes on). The 16023, 16000 and 16027 pages say
    nothing of it: the simulator fails the Dial the same way rather than join the call anyway.
    """
    attrs = verb.attrs
    options = options_from_attrs(attrs)
    conference = state.live_conference_named(verb.name)
    coach = attrs.get("coach") or None
    refusal = participants.twiml_join_problem(state, conference, options.label, coach)
    if refusal is not None:
        state.alert(refusal.code, call.sid, refusal.message)
        return False
    # 16002 (an invalid maxParticipants) and 16020 (a full room) do not say how the call goes on either:
    # the Dial fails the same way.
    if conferences.twiml_max_participants(attrs.get("maxParticipants")) is None:
        state.alert(16002, call.sid, "maxParticipants must be a positive integer <= 250")
        return False
    if conference is not None and conferences.is_full(conference):
        state.alert(16020, call.sid, f"Conference {conference.sid} is full")
        return False
    if conference is None:  # created only once the call is really going in
        conference = conferences.create(state, verb.name)
    now = state.now()
    participant = Participant(
        call_sid=call.sid,
        conference_sid=conference.sid,
        date_created=now,
        date_updated=now,
        options=options,
        muted=options.muted,
        coaching=coach is not None,
        call_sid_to_coach=coach,
        start_conference_on_enter=options.start_conference_on_enter,
        end_conference_on_exit=options.end_conference_on_exit,
        wait_url=options.wait_url,
        wait_method=options.wait_method,
        settings=settings_from_attrs(attrs),
    )
    conference.participants[call.sid] = participant
    call.conference_sid = conference.sid
    conferences.connect(state, conference, participant)
    return True


def options_from_attrs(attrs: dict[str, str]) -> ParticipantOptions:
    return ParticipantOptions(
        label=attrs.get("participantLabel") or None,
        muted=twiml_bool(attrs.get("muted"), False),
        start_conference_on_enter=twiml_bool(attrs.get("startConferenceOnEnter"), True),
        end_conference_on_exit=twiml_bool(attrs.get("endConferenceOnExit"), False),
        beep=attrs.get("beep", "true"),
        wait_url=attrs.get("waitUrl"),
        # An invalid waitMethod is only a warning (13234): the default, POST, is used.
        wait_method=media.method_of(attrs.get("waitMethod"), "POST") or "POST",
    )


def settings_from_attrs(attrs: dict[str, str]) -> ConferenceSettings:
    status_events = event_list(attrs.get("statusCallbackEvent")) or _DEFAULT_CONFERENCE_EVENTS
    recording_events = event_list(attrs.get("recordingStatusCallbackEvent")) or _DEFAULT_RECORDING_EVENTS
    return ConferenceSettings(
        status_callback=CallbackTarget(
            url=attrs.get("statusCallback"),
            method=attrs.get("statusCallbackMethod", "POST").upper(),
            events=status_events,
        ),
        record_from_start=attrs.get("record") == "record-from-start",
        recording_callback=CallbackTarget(
            url=attrs.get("recordingStatusCallback"),
            method=attrs.get("recordingStatusCallbackMethod", "POST").upper(),
            events=recording_events,
        ),
        max_participants=conferences.twiml_max_participants(attrs.get("maxParticipants")) or MAX_PARTICIPANTS,
    )
