"""Call-control policies in one named place: end-on-exit flags and supervisor modes.

End-on-exit: the customer's leg ends the conference when it leaves (nobody stays on for nothing, and a
transfer target never rings on after the customer has gone); agents', external and supervisors' legs never do,
so an agent who leaves mid-transfer cannot end the customer's call. Twilio ignores end-on-exit changes on a
held leg, so the flags are put right before any hold.
"""

from __future__ import annotations

from confctl.domain.effects import Update
from confctl.domain.model import Mode, Participant


def end_on_exit_for(role: str) -> bool:
    """The end-on-exit flag a leg of this role must carry."""
    return role == "customer"


def end_on_exit_fix(participant: Participant) -> Update | None:
    """The update that gives a joined leg its policy flag, if it lacks it (to run before holding it)."""
    wanted = end_on_exit_for(participant.role)
    if participant.call_sid is None or participant.end_conference_on_exit == wanted:
        return None
    return Update(label=participant.label, call_sid=participant.call_sid, end_conference_on_exit=wanted)


def supervisor_flags(mode: Mode, coach_call_sid: str | None) -> tuple[bool, bool, str | None]:
    """(muted, coaching, call_sid_to_coach) for a supervisor mode: monitor listens, coach whispers, barge talks."""
    if mode == "monitor":
        return True, False, None
    if mode == "coach":
        return False, True, coach_call_sid
    return False, False, None
