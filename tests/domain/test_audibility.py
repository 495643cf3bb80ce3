"""Who hears whom, table-driven over the states API.md §4 names."""

from __future__ import annotations

from dataclasses import replace

import pytest

from confctl.domain.audibility import audibility
from confctl.domain.model import Conference, Participant

T = "2026-11-25T12:00:00+00:00"


def leg(label: str, sid: str, **flags: object) -> Participant:
    return replace(Participant(label=label, role="agent", call_sid=sid, joined_at=T), **flags)  # type: ignore[arg-type]


def room(*legs: Participant, started: bool = True, ended: bool = False) -> Conference:
    return Conference(id="room", version=1, started_at=T if started else None, ended_at=T if ended else None,
                      participants=legs)


CASES = [
    ("plain two-way", room(leg("c", "C"), leg("a", "A")), {"c": ["a"], "a": ["c"]}, []),
    ("before start everyone hears wait music", room(leg("c", "C"), leg("a", "A"), started=False),
     {"c": [], "a": []}, ["a", "c"]),
    ("held customer hears music, nobody hears them", room(leg("c", "C", hold=True), leg("a", "A")),
     {"c": [], "a": []}, ["c"]),
    ("muted agent hears everyone, heard by nobody", room(leg("c", "C"), leg("a", "A", muted=True)),
     {"c": [], "a": ["c"]}, []),
    ("monitor: muted supervisor hears both, heard by none",
     room(leg("c", "C"), leg("a", "A"), leg("s", "S", muted=True)),
     {"c": ["a"], "a": ["c"], "s": ["a", "c"]}, []),
    ("coach: only the coached agent hears the supervisor",
     room(leg("c", "C"), leg("a", "A"), leg("s", "S", coaching=True, call_sid_to_coach="A")),
     {"c": ["a"], "a": ["c", "s"], "s": ["a", "c"]}, []),
    ("barge: everyone hears everyone", room(leg("c", "C"), leg("a", "A"), leg("s", "S")),
     {"c": ["a", "s"], "a": ["c", "s"], "s": ["a", "c"]}, []),
    ("consult: held customer, agents talk", room(leg("c", "C", hold=True), leg("a", "A"), leg("b", "B")),
     {"c": [], "a": ["b"], "b": ["a"]}, ["c"]),
    ("legs that left are not in the mix", room(leg("c", "C"), leg("a", "A", left_at=T)), {"c": []}, []),
    ("a completed conference has no audio", room(leg("c", "C"), ended=True), {}, []),
]


@pytest.mark.parametrize(("name", "conference", "hears", "music"), CASES, ids=[c[0] for c in CASES])
def test_audibility(name: str, conference: Conference, hears: dict[str, list[str]], music: list[str]) -> None:
    """Each state gives exactly Twilio's mix."""
    result = audibility(conference)
    assert result.hears == hears
    assert result.music == music
