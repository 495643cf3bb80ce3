"""A conference's timeline: per participant, the intervals it rang, was in, on hold, muted, coaching, monitoring
or barging, derived by diffing the folded state after each event of the log (pure, stdlib only).

Diffing successive folds (rather than reading the events themselves) keeps the timeline consistent with the
state and with audibility at every version by construction: an interval starts at the first version whose
state shows it and ends at the first version whose state no longer does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from confctl.domain.model import Conference, Participant

IntervalKind = Literal["ringing", "joined", "hold", "muted", "coaching", "monitor", "barge"]


@dataclass(frozen=True, slots=True)
class Step:
    """One event of the log, placed: the state after it, its version, when it was stored and who caused it."""

    state: Conference
    version: int
    at: str
    actor: str | None


@dataclass(slots=True)
class Interval:
    """One stretch of one kind; `to`/`to_version`/`ended_by` stay None while it is open."""

    kind: IntervalKind
    from_: str
    from_version: int
    actor: str | None
    with_: str | None = None  # coaching: the label of the participant coached
    to: str | None = None
    to_version: int | None = None
    ended_by: str | None = None


@dataclass(slots=True)
class ParticipantTimeline:
    """A participant's intervals, in the order they started."""

    label: str
    role: str
    call_sid: str | None
    intervals: list[Interval] = field(default_factory=list)


# What a participant is in a state: kinds, with whom for coaching (None otherwise).
_Marks = frozenset[tuple[IntervalKind, str | None]]


def _marks(conference: Conference, participant: Participant) -> _Marks:
    """The interval kinds that hold for this participant in this state."""
    if participant.status == "ringing":
        return frozenset({("ringing", None)})
    if not participant.is_connected:
        return frozenset()
    marks: set[tuple[IntervalKind, str | None]] = {("joined", None)}
    if participant.hold:
        marks.add(("hold", None))
    if participant.muted:
        marks.add(("muted", None))
    if participant.coaching:
        coached = conference.by_call_sid(participant.call_sid_to_coach)
        marks.add(("coaching", coached.label if coached else participant.call_sid_to_coach))
    if participant.role == "supervisor" and participant.mode == "monitor":
        marks.add(("monitor", None))
    elif participant.role == "supervisor" and participant.mode == "barge":
        marks.add(("barge", None))
    return frozenset(marks)


_ORDER: tuple[IntervalKind, ...] = ("ringing", "joined", "hold", "muted", "coaching", "monitor", "barge")


def timeline(steps: Iterable[Step]) -> list[ParticipantTimeline]:
    """Every participant's intervals over the steps (in version order); participants in the order first seen.

    A participant is one leg: its place in the state's participants, which the fold only ever appends to.
    """
    result: list[ParticipantTimeline] = []
    open_: list[dict[tuple[IntervalKind, str | None], Interval]] = []
    for step in steps:
        participants = step.state.participants
        for index, participant in enumerate(participants):
            if index == len(result):
                result.append(ParticipantTimeline(participant.label, participant.role, participant.call_sid))
                open_.append({})
            entry = result[index]
            entry.label, entry.role, entry.call_sid = participant.label, participant.role, participant.call_sid
            now = _marks(step.state, participant)
            current = open_[index]
            for mark in [m for m in current if m not in now]:
                interval = current.pop(mark)
                interval.to, interval.to_version, interval.ended_by = step.at, step.version, step.actor
            for kind, with_ in sorted((m for m in now if m not in current), key=lambda m: _ORDER.index(m[0])):
                interval = Interval(kind=kind, from_=step.at, from_version=step.version, actor=step.actor, with_=with_)
                current[(kind, with_)] = interval
                entry.intervals.append(interval)
    return result
