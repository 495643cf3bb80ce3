"""Who hears whom in a conference, as Twilio mixes audio.

Held: hears the hold music, heard by nobody. Muted: hears everyone, heard by nobody. Coaching: heard only
by the participant it coaches. Before the conference starts everyone hears the wait music and nobody
else. Only connected legs count; a participant is named by its label, or its CallSid when unlabeled.
"""

from __future__ import annotations

from dataclasses import dataclass

from confctl.simulator.model.records import Conference, Participant


@dataclass(frozen=True, slots=True)
class Audibility:
    hears: dict[str, list[str]]
    music: list[str]

    def as_json(self) -> dict[str, object]:
        return {"hears": self.hears, "music": self.music}


def name(participant: Participant) -> str:
    return participant.label if participant.label is not None else participant.call_sid


def audibility(conference: Conference) -> Audibility:
    live = [p for p in conference.participants.values() if p.connected]
    started = conference.status == "in-progress"
    hears: dict[str, list[str]] = {}
    music: list[str] = []
    for listener in live:
        if not started or listener.hold:
            music.append(name(listener))
            hears[name(listener)] = []
            continue
        hears[name(listener)] = sorted(
            name(speaker) for speaker in live if speaker is not listener and _reaches(speaker, listener)
        )
    return Audibility(hears=dict(sorted(hears.items())), music=sorted(music))


def _reaches(speaker: Participant, listener: Participant) -> bool:
    if speaker.hold or speaker.muted:
        return False
    if speaker.coaching:
        return speaker.call_sid_to_coach == listener.call_sid
    return True
