"""Whom a coaching leg whispers to, when Twilio's callbacks never say.

A conference status callback carries `Coaching` but not `CallSidToCoach`. The coached call is known from what
confctl asked for (the dial or update intent) and from Twilio's REST resources (the CreateParticipant and
UpdateParticipant answers, the Participants list `sync` reads), each "naming" it; callbacks only keep it or end it:

- `Coaching=true` keeps the coached call known (it never clears it);
- `Coaching=false`, in the newest snapshot, clears it, once the naming has been seen in effect: a callback
  numbered after the naming showed `Coaching=true`. Before that, a `Coaching=false` callback may predate
  the change (a REST answer is only known to come after the callbacks stored when it was asked for, not where
  it is among those still on their way), so it turns `coaching` off, which is all audibility looks at, but keeps
  the name for the `Coaching=true` callback that follows.
"""

from __future__ import annotations

from typing import Any

from confctl.domain.events import ParticipantFlags
from confctl.domain.frozen import replace
from confctl.domain.model import Participant


def named(leg: Participant, call_sid: str | None, after_sequence: int) -> Participant:
    """`leg` coaching `call_sid`, as a request or a REST resource stored after callback `after_sequence` says.

    Naming the call already known changes nothing (a mute's answer repeats it): what confirmed it stays."""
    if call_sid is None or call_sid == leg.call_sid_to_coach:
        return leg
    return replace(leg, call_sid_to_coach=call_sid, coach_unconfirmed_after=after_sequence)


def stopped() -> dict[str, Any]:
    """The changes of a leg Twilio has seen stop coaching."""
    return {"call_sid_to_coach": None, "coach_unconfirmed_after": None}


def after_callback(leg: Participant, flags: ParticipantFlags, sequence: int, newest: bool) -> dict[str, Any]:
    """The coached call after a participant callback numbered `sequence` (`newest`: its snapshot is applied)."""
    unconfirmed = leg.coach_unconfirmed_after
    if flags.coaching:
        if newest and flags.call_sid_to_coach:
            # Stored from a callback that carried one (the simulator once sent it; Twilio does not).
            return {"call_sid_to_coach": flags.call_sid_to_coach, "coach_unconfirmed_after": None}
        if unconfirmed is not None and sequence > unconfirmed:
            return {"coach_unconfirmed_after": None}  # the naming is now seen in effect
        return {}
    if newest and unconfirmed is None:
        return stopped()
    return {}
