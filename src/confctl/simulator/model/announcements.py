"""Announcements: `AnnounceUrl` on UpdateParticipant (to that participant) and on UpdateConference (to the room).

Twilio fetches the URL with `AnnounceMethod` (default POST), plays it, and reports the end with the
`announcement-end` conference event, or `announcement-fail`, to the conference status callback when its
events include `announcement` (the `<Conference>` page and CreateParticipant's ConferenceStatusCallbackEvent).
Both carry `AnnounceUrl` (and the fail `ReasonAnnouncementFailed`); a participant announcement also carries the
participant's fields while that participant is still in the conference.

The page says announcement-fail "will only be sent if there is an internal Twilio error" for now, and says
nothing of a URL that cannot be fetched or played. The simulator sends announcement-fail then (Twilio says it
is adding failures to that event), with the error in its alerts as well; a receiver must not count on either.
Also undocumented, and modelled the less convenient way: an announcement to a participant that is not connected
fails at once, and nothing at all is reported once the conference has ended before the announcement played.
"""

from __future__ import annotations

from confctl.simulator.model import conferences, media
from confctl.simulator.model.effects import StartTimer
from confctl.simulator.model.media import MediaRequest, Outcome
from confctl.simulator.model.records import Conference, Participant
from confctl.simulator.model.state import State


def to_participant(state: State, conference: Conference, participant: Participant, url: str, method: str) -> None:
    """Play `url` to one participant."""
    if not participant.connected:
        failed = MediaRequest(0, "announce", conference.sid, participant.call_sid, url, method)
        _report(state, conference, failed, "announcement-fail", "the participant is not connected")
        return
    media.request(state, "announce", conference, participant, url, method)


def to_conference(state: State, conference: Conference, url: str, method: str) -> None:
    """Play `url` to everyone in the conference."""
    media.request(state, "announce", conference, None, url, method)


def fetched(state: State, pending: MediaRequest, outcome: Outcome) -> None:
    """The announcement's URL answered: it plays (then ends), or it fails."""
    conference = state.conferences.get(pending.conference_sid)
    if conference is None or conference.status == "completed":
        return
    if outcome.seconds is None:
        state.alert(outcome.error_code or media.HTTP_RETRIEVAL_FAILURE, pending.call_sid or conference.sid,
                    f"AnnounceUrl {pending.url}: {outcome.reason}")
        _report(state, conference, pending, "announcement-fail", outcome.reason)
        return

    def ended() -> None:
        if conference.status != "completed":
            _report(state, conference, pending, "announcement-end", None)

    state.emit(StartTimer(f"{conference.sid}:announce:{pending.token}", outcome.seconds, ended))


def _report(state: State, conference: Conference, pending: MediaRequest, event: str, reason: str | None) -> None:
    participant = conference.participants.get(pending.call_sid) if pending.call_sid else None
    present = participant if participant is not None and participant.connected else None
    extra = [("AnnounceUrl", pending.url)]
    if reason is not None:
        extra.append(("ReasonAnnouncementFailed", reason))
    conferences.send(state, conference, event, present, extra)
