"""Who hears whom, exactly as Twilio mixes a conference.

- before the conference starts, everyone in it hears the wait music and nobody else;
- a participant on hold hears hold music and is heard by nobody;
- a muted participant hears everyone and is heard by nobody;
- a coaching participant is heard only by the participant it coaches (and hears everyone).
"""

from __future__ import annotations

from dataclasses import dataclass

from confctl.domain.model import Conference, Participant


@dataclass(frozen=True, slots=True)
class Audibility:
    """`hears[label]` = sorted labels that participant hears; `music` = sorted labels hearing music."""

    hears: dict[str, list[str]]
    music: list[str]


def _heard_by(speaker: Participant, listener: Participant) -> bool:
    if speaker is listener or speaker.hold or speaker.muted:
        return False
    if speaker.coaching:
        return speaker.call_sid_to_coach is not None and speaker.call_sid_to_coach == listener.call_sid
    return True


def audibility(conference: Conference) -> Audibility:
    """Who hears whom among the participants in the conference now."""
    present = [p for p in conference.participants if p.is_connected]
    if conference.status == "completed":
        return Audibility(hears={}, music=[])
    if conference.status == "init":
        return Audibility(hears={p.label: [] for p in present}, music=sorted(p.label for p in present))
    hears: dict[str, list[str]] = {}
    music: list[str] = []
    for listener in present:
        if listener.hold:
            hears[listener.label] = []
            music.append(listener.label)
            continue
        hears[listener.label] = sorted(s.label for s in present if _heard_by(s, listener))
    return Audibility(hears=hears, music=sorted(music))
