"""Announcements: audio played to one participant or to the whole conference (`POST .../announcements`).

The command stores `announcement.requested` and asks Twilio to play the URL (UpdateParticipant, or for the
whole room UpdateConference, `AnnounceUrl`). Twilio reports the end with its `announcement-end` or
`announcement-fail` conference events, stored as `announcement.played` / `announcement.failed`: they carry the
URL and, for a participant still in the conference, its CallSid and label, which is how a frontend matches
them to its request (Twilio's callbacks carry no id of ours). Twilio says announcement-fail is sent "only if
there is an internal Twilio error" for now: an announcement may end without either event.

Announcements change nothing else in the conference; their callbacks count in its SequenceNumbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from confctl.domain import commands as cmd
from confctl.domain import errors as de
from confctl.domain.effects import Announce, Plan
from confctl.domain.events import DomainEvent, register
from confctl.domain.evolve import on
from confctl.domain.frozen import replace
from confctl.domain.lost_callbacks import note_sequence
from confctl.domain.model import Conference

MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class AnnouncementRequested(DomainEvent):
    """confctl is about to have Twilio play `url` to `to` (a label), or to everyone when `to` is None."""

    type: ClassVar[str] = "announcement.requested"
    url: str
    to: str | None
    call_sid: str | None
    at: str


@dataclass(frozen=True, slots=True)
class AnnouncementEnded(DomainEvent):
    """Base of Twilio's announcement callbacks; `call_sid` and `label` only while that participant is in."""

    conference_sid: str
    url: str | None
    call_sid: str | None
    label: str | None
    sequence: int
    at: str


@dataclass(frozen=True, slots=True)
class AnnouncementPlayed(AnnouncementEnded):
    """`announcement-end`: the announcement was played."""

    type: ClassVar[str] = "announcement.played"


@dataclass(frozen=True, slots=True)
class AnnouncementFailed(AnnouncementEnded):
    """`announcement-fail`, with Twilio's `ReasonAnnouncementFailed`."""

    type: ClassVar[str] = "announcement.failed"
    reason: str | None = None


register(AnnouncementRequested, AnnouncementPlayed, AnnouncementFailed)


@dataclass(frozen=True, slots=True)
class MakeAnnouncement:
    """POST announcements: `to` is a participant's label (or CallSid); None plays to the whole conference."""

    url: str
    to: str | None = None


def check_url(url: str) -> None:
    """An absolute http(s) URL Twilio can fetch, or InvalidRequest."""
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname or any(
            c.isspace() or c == "\x00" for c in url):
        raise de.InvalidRequest(f"url must be an absolute http(s) URL of at most {MAX_URL} characters")


def plan_announcement(conference: Conference, command: MakeAnnouncement, at: str) -> Plan:
    """Play a URL to a joined participant, or to the conference."""
    cmd.ensure_open(conference)
    check_url(command.url)
    if command.to is None:
        event = AnnouncementRequested(url=command.url, to=None, call_sid=None, at=at)
        return Plan(events=[event], effects=[Announce(url=command.url)])
    leg = cmd.connected(conference, command.to)
    event = AnnouncementRequested(url=command.url, to=leg.label, call_sid=leg.call_sid, at=at)
    return Plan(events=[event], effects=[Announce(url=command.url, label=leg.label, call_sid=leg.call_sid)])


@on(AnnouncementPlayed)
@on(AnnouncementFailed)
def _seen(conference: Conference, e: AnnouncementEnded) -> Conference:
    return replace(conference, last_sequence=max(conference.last_sequence, e.sequence),
                   missing_sequences=note_sequence(conference.missing_sequences, conference.last_sequence, e.sequence),
                   twilio_sid=conference.twilio_sid or e.conference_sid)
