"""Dialed legs from dial to hang-up: ringing per the directory, answer plans, and leaving conferences.

A leg the API dialed rings, then answers, is busy, fails or rings out (no-answer at its Timeout plus
Twilio's 5 s buffer). When it answers it does what it was created for: enter a conference
(CreateParticipant), fetch TwiML from a Url or run inline TwiML (CreateCall). Legs added with the
Participants API hang up when they leave the conference; legs that entered through TwiML carry on with
the verbs after their `<Dial>`.
"""

from __future__ import annotations

from confctl.simulator.model import calls, conferences, program
from confctl.simulator.model.effects import Fetch, StartTimer
from confctl.simulator.model.records import Call, DirectoryEntry, FetchPlan, JoinPlan, Participant, TwimlPlan
from confctl.simulator.model.state import State

# CreateParticipant: "We always add a 5-second timeout buffer to outgoing calls, so value of 10 would
# result in an actual timeout that was closer to 15 seconds." CreateCall says "for some call flows" without
# naming them: the simulator adds it to every dialed leg, so a leg may ring past its Timeout.
RING_BUFFER_S = 5.0


def dial(state: State, call: Call) -> None:
    """Start an outbound leg: it leaves the queue at once."""
    state.emit(StartTimer(calls.ring_timer_key(call), 0.0, lambda: _initiate(state, call)))


def _initiate(state: State, call: Call) -> None:
    if call.status != "queued":
        return
    calls.set_status(state, call, "initiated")
    entry = state.directory.get(call.to, DirectoryEntry())
    if entry.behavior == "failed":  # e.g. a number that does not exist: it never rings
        _after(state, call, entry.after_s or 0.0, "failed")
        return
    calls.set_status(state, call, "ringing")
    participant = _participant(state, call)
    if participant is not None:
        participant.status = "ringing"
        participant.date_updated = state.now()
    limit = call.timeout_s + RING_BUFFER_S
    if entry.behavior == "no-answer":
        ring = min(entry.after_s, limit) if entry.after_s is not None else limit
        _after(state, call, ring, "no-answer")
        return
    ring = entry.after_s if entry.after_s is not None else state.default_ring_s
    if ring > limit:
        _after(state, call, limit, "no-answer")
    else:
        _after(state, call, ring, entry.behavior)


def _after(state: State, call: Call, delay_s: float, outcome: str) -> None:
    def fire() -> None:
        if call.ended or call.status not in ("initiated", "ringing"):
            return
        if outcome == "answer":
            answer(state, call)
        else:
            fail(state, call, outcome)

    state.emit(StartTimer(calls.ring_timer_key(call), delay_s, fire))


def answer(state: State, call: Call) -> None:
    """The dialed party picked up: the leg does what it was created for."""
    calls.set_status(state, call, "in-progress")
    plan = call.plan
    if isinstance(plan, JoinPlan):
        conference = state.conferences[plan.conference_sid]
        participant = conference.participants.get(call.sid)
        if participant is None or conference.status == "completed":
            calls.finish(state, call, "completed")
        else:
            conferences.connect(state, conference, participant)
    elif isinstance(plan, FetchPlan):
        fetch(state, call, plan.url, plan.method)
    elif isinstance(plan, TwimlPlan):
        program.load(state, call, plan.twiml)


def fetch(state: State, call: Call, url: str, method: str) -> None:
    """Ask the application for the call's TwiML (voice request)."""
    call.program_id += 1
    state.emit(Fetch(call.sid, call.program_id, url, method, tuple(calls.base_params(call))))


def fail(state: State, call: Call, status: str) -> None:
    """The leg never connected (busy, no-answer, failed, canceled): a participant leaves with that status."""
    participant = _participant(state, call)
    if participant is not None:
        conference = state.conferences[participant.conference_sid]
        others = conferences.remove(
            state, conference, participant, reason="participant_add_failed", call_status=status, kicked=False
        )
        calls.finish(state, call, status)
        end_legs(state, others)
    else:
        calls.finish(state, call, status)


def hang_up(state: State, call: Call, *, reason: str, kicked: bool, unanswered_status: str) -> None:
    """End a leg now: leave its conference first (with the given reason), then the call ends."""
    if call.ended:
        return
    if call.answered_at is None:
        fail(state, call, unanswered_status)
        return
    participant = _participant(state, call)
    others: list[Participant] = []
    if participant is not None:
        conference = state.conferences[participant.conference_sid]
        others = conferences.remove(
            state, conference, participant, reason=reason, call_status="completed", kicked=kicked
        )
    calls.finish(state, call, "completed")
    end_legs(state, others)


def kick(state: State, participant: Participant) -> None:
    """Participant DELETE: the leg leaves; an API-added leg hangs up, a TwiML leg runs its next verbs."""
    call = state.calls[participant.call_sid]
    conference = state.conferences[participant.conference_sid]
    if not participant.connected:
        others = conferences.remove(
            state, conference, participant, reason="participant_updated_via_api", call_status="canceled", kicked=True
        )
        calls.finish(state, call, "canceled")
    else:
        status = "completed" if participant.via_api else "in-progress"
        others = conferences.remove(
            state, conference, participant, reason="participant_updated_via_api", call_status=status, kicked=True
        )
        left_conference(state, call, participant)
    end_legs(state, others)


def left_conference(state: State, call: Call, participant: Participant) -> None:
    """A connected leg is out of its conference: hang up API legs, continue the TwiML of the others."""
    call.conference_sid = None
    if participant.via_api:
        calls.finish(state, call, "completed")
    else:
        program.run(state, call)


def end_legs(state: State, participants: list[Participant]) -> None:
    """Legs that left because their conference ended: connected ones leave, dialing ones are cancelled."""
    for participant in participants:
        call = state.calls[participant.call_sid]
        if participant.status == "complete":
            left_conference(state, call, participant)
        else:
            calls.finish(state, call, "canceled")


def _participant(state: State, call: Call) -> Participant | None:
    if call.conference_sid is None:
        return None
    conference = state.conferences.get(call.conference_sid)
    return conference.participants.get(call.sid) if conference else None
