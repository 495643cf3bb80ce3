"""Decisions for the participant, conference and recording commands: preconditions, then a Plan.

Every precondition of API.md §5 is checked here, before anything is stored or sent to Twilio.
"""

from __future__ import annotations

from dataclasses import dataclass

from confctl.domain import command_events as ce
from confctl.domain import errors as de
from confctl.domain.addresses import check_address
from confctl.domain.effects import Dial, Effect, EndConference, HangUp, Kick, Plan, Update, UpdateRecording
from confctl.domain.labels import check_label
from confctl.domain.model import Conference, Mode, Participant
from confctl.domain.policy import end_on_exit_fix, end_on_exit_for, supervisor_flags

RECORDING_ACTIONS = {"pause": "paused", "resume": "in-progress", "stop": "stopped"}


def ensure_open(conference: Conference) -> None:
    """The conference exists and has not ended."""
    if not conference.exists:
        raise de.ConferenceNotFound(f"no conference {conference.id!r}")
    if conference.status == "completed":
        raise de.ConferenceEnded(f"conference {conference.id!r} has ended")


def participant(conference: Conference, ref: str) -> Participant:
    """The participant named by label or CallSid, or ParticipantNotFound."""
    found = conference.find(ref)
    if found is None:
        raise de.ParticipantNotFound(f"no participant {ref!r} in {conference.id!r}")
    return found


def connected(conference: Conference, ref: str) -> Participant:
    """A participant that is in the conference now."""
    found = participant(conference, ref)
    if not found.is_connected or found.call_sid is None:
        raise de.ParticipantNotConnected(f"participant {found.label!r} is {found.status}, not joined")
    return found


def free_label(conference: Conference, wanted: str | None, role: str) -> str:
    """`wanted` if Twilio would take it (else InvalidLabel) and no live leg has it (else LabelTaken), or the
    first free `{role}-{n}` (checked too: a label confctl makes up must not be one Twilio refuses either)."""
    taken = {p.label for p in conference.participants if p.is_live}
    if wanted is not None:
        check_label(wanted)
        if wanted in taken:
            raise de.LabelTaken(f"label {wanted!r} is in use in {conference.id!r}")
        return wanted
    n = 1
    while f"{role}-{n}" in taken:
        n += 1
    return check_label(f"{role}-{n}")


def coach_target(conference: Conference, ref: str | None) -> Participant:
    """The agent a coaching supervisor speaks to: it must be in the conference (Twilio 16028) and not on hold
    (Twilio 16027), whether the coach is being dialed or an existing leg switches to coach (or to another agent).

    Twilio refuses only the coaching request: putting a coached agent on hold is allowed (it hears music, and the
    whisper reaches nobody meanwhile), so `plan_change` lets a hold through."""
    if ref is None:
        raise de.InvalidRequest("mode 'coach' needs `coach`: the label of the agent to coach")
    found = conference.find(ref)
    if found is None or not found.is_connected or found.call_sid is None:
        raise de.CoachTargetNotConnected(f"coach target {ref!r} is not connected")
    if found.hold:
        raise de.CoachTargetOnHold(f"coach target {found.label!r} is on hold: take them off hold first")
    return found


@dataclass(frozen=True, slots=True)
class AddParticipant:
    """POST participants."""

    to: str
    role: str
    label: str | None = None
    mode: Mode | None = None
    coach: str | None = None
    timeout_s: int | None = None


def plan_add(conference: Conference, cmd: AddParticipant, at: str) -> tuple[Plan, str]:
    """Dial an agent, external party or supervisor; returns the plan and the new leg's label."""
    ensure_open(conference)
    check_address(cmd.to)
    if cmd.role != "supervisor" and (cmd.mode is not None or cmd.coach is not None):
        raise de.NotASupervisor("mode and coach apply to role 'supervisor' only")
    mode: Mode = (cmd.mode or ("coach" if cmd.coach else "monitor")) if cmd.role == "supervisor" else "normal"
    coach_sid = coach_target(conference, cmd.coach).call_sid if mode == "coach" else None
    label = free_label(conference, cmd.label, cmd.role)
    muted, coaching, to_coach = supervisor_flags(mode, coach_sid) if cmd.role == "supervisor" else (False, False, None)
    event = ce.ParticipantDialRequested(label=label, role=cmd.role, to=cmd.to, at=at, mode=mode,
                                        coach=cmd.coach if mode == "coach" else None, call_sid_to_coach=to_coach,
                                        timeout_s=cmd.timeout_s)
    dial = Dial(label=label, to=cmd.to, role=cmd.role, timeout_s=cmd.timeout_s, muted=muted, coaching=coaching,
                call_sid_to_coach=to_coach, end_conference_on_exit=end_on_exit_for(cmd.role))
    return Plan(events=[event], effects=[dial]), label


@dataclass(frozen=True, slots=True)
class ChangeParticipant:
    """PATCH participant; None leaves a field as it is."""

    hold: bool | None = None
    muted: bool | None = None
    hold_music_url: str | None = None
    mode: Mode | None = None
    coach: str | None = None


def plan_change(conference: Conference, ref: str, cmd: ChangeParticipant, at: str,
                default_hold_url: str | None) -> Plan:
    """Hold, mute, or switch a supervisor's mode live on the same leg."""
    ensure_open(conference)
    leg = connected(conference, ref)
    assert leg.call_sid is not None
    if (cmd.mode is not None or cmd.coach is not None) and leg.role != "supervisor":
        raise de.NotASupervisor(f"{leg.label!r} is a {leg.role}; modes are for supervisors")
    if cmd.mode is not None and cmd.mode not in ("monitor", "coach", "barge"):
        raise de.InvalidRequest("a supervisor's mode is monitor, coach or barge")
    if cmd.hold_music_url is not None and cmd.hold is not True:
        raise de.InvalidRequest("hold_music_url goes with hold: true")
    update = Update(label=leg.label, call_sid=leg.call_sid, hold=cmd.hold, muted=cmd.muted,
                    hold_url=(cmd.hold_music_url or default_hold_url) if cmd.hold else None)
    if cmd.mode is not None or cmd.coach is not None:
        mode: Mode = cmd.mode or "coach"
        coach_sid = coach_target(conference, cmd.coach or _current_coach(conference, leg)).call_sid \
            if mode == "coach" else None
        muted, coaching, to_coach = supervisor_flags(mode, coach_sid)
        if cmd.muted is not None and cmd.muted != muted:
            raise de.InvalidRequest(f"mode {mode!r} sets muted={str(muted).lower()}")
        update = Update(label=leg.label, call_sid=leg.call_sid, hold=cmd.hold, hold_url=update.hold_url,
                        muted=muted, coaching=coaching, call_sid_to_coach=to_coach)
    changes: dict[str, object] = {k: v for k, v in {
        "hold": update.hold, "muted": update.muted, "coaching": update.coaching,
        "call_sid_to_coach": update.call_sid_to_coach, "hold_url": update.hold_url}.items() if v is not None}
    if not changes:
        raise de.InvalidRequest("nothing to change: give hold, muted, mode or coach")
    effects: list[Effect] = []
    fix = end_on_exit_fix(leg) if cmd.hold else None
    if fix is not None and not leg.hold:
        effects.append(fix)  # before the hold: Twilio ignores end-on-exit changes on a held leg
    effects.append(update)
    event = ce.ParticipantUpdateRequested(label=leg.label, call_sid=leg.call_sid, changes=changes, at=at)
    return Plan(events=[event], effects=effects)


def _current_coach(conference: Conference, supervisor: Participant) -> str | None:
    coached = conference.by_call_sid(supervisor.call_sid_to_coach)
    return coached.label if coached else supervisor.requested_coach


def plan_remove(conference: Conference, ref: str, at: str) -> Plan:
    """Take a leg out: kick a joined leg, hang up a ringing one."""
    ensure_open(conference)
    leg = participant(conference, ref)
    if not leg.is_live or leg.call_sid is None:
        raise de.ParticipantNotConnected(f"participant {leg.label!r} is {leg.status}")
    effect: Kick | HangUp = Kick(leg.label, leg.call_sid) if leg.is_connected else HangUp(leg.label, leg.call_sid)
    return Plan(events=[ce.ParticipantRemovalRequested(label=leg.label, call_sid=leg.call_sid, at=at)],
                effects=[effect])


def plan_end(conference: Conference, at: str) -> Plan:
    """End the conference; legs still ringing are hung up too, so every leg ends."""
    ensure_open(conference)
    ringing = [HangUp(p.label, p.call_sid) for p in conference.participants
               if p.is_live and not p.is_connected and p.call_sid is not None]
    return Plan(events=[ce.ConferenceEndRequested(at=at)], effects=[EndConference(), *ringing])


def plan_recording(conference: Conference, action: str, pause_behavior: str | None, at: str) -> Plan:
    """Pause, resume or stop the recording, if the recording is in a state that allows it."""
    ensure_open(conference)
    if action not in RECORDING_ACTIONS:
        raise de.InvalidRequest("action is pause, resume or stop")
    if pause_behavior is not None and action != "pause":
        raise de.InvalidRequest("pause_behavior goes with action 'pause'")
    recording = conference.recording
    current = recording.status if recording else ("in-progress" if conference.record else None)
    allowed = {"pause": {"in-progress"}, "resume": {"paused"}, "stop": {"in-progress", "paused"}}[action]
    if current not in allowed or conference.twilio_sid is None:
        raise de.InvalidTransition(f"cannot {action} a recording that is {current or 'absent'}")
    sid = recording.sid if recording else "Twilio.CURRENT"
    event = ce.RecordingUpdateRequested(action=action, at=at, pause_behavior=pause_behavior)
    return Plan(events=[event], effects=[UpdateRecording(sid, RECORDING_ACTIONS[action], pause_behavior)])
