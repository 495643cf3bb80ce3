"""The TwilioGateway port: everything confctl asks of Twilio, in confctl's own terms.

The production adapter (`confctl.adapters.twilio_gateway`) drives the twilio SDK; the simulator answers
the same REST requests, so tests and `confctl dev` use the very same adapter pointed at another base URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# Every way into a conference (TwiML and CreateParticipant) subscribes to the same events: Twilio keeps the
# first participant's settings, so they must never differ (API.md §2). `announcement` brings the
# announcement-end / announcement-fail of the announcements confctl plays (POST .../announcements).
CONFERENCE_STATUS_EVENTS = ("start", "end", "join", "leave", "mute", "hold", "modify", "announcement")
# The conference recording's status changes confctl follows, on both ways in (TwiML's
# recordingStatusCallbackEvent, CreateParticipant's ConferenceRecordingStatusCallbackEvent).
RECORDING_STATUS_EVENTS = ("in-progress", "completed", "absent")


class TwilioError(Exception):
    """Twilio answered and refused the request (4xx/5xx with Twilio's error body)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Twilio {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class TwilioUnavailable(Exception):
    """Twilio could not be reached (connect error, timeout, 5xx) even after the allowed retries."""


@dataclass(frozen=True, slots=True)
class ParticipantSnapshot:
    """A conference participant as Twilio reports it (REST resource)."""

    call_sid: str
    conference_sid: str
    label: str | None
    status: str  # queued | connecting | ringing | connected | complete | failed
    muted: bool
    hold: bool
    coaching: bool
    call_sid_to_coach: str | None
    end_conference_on_exit: bool
    start_conference_on_enter: bool


@dataclass(frozen=True, slots=True)
class ConferenceSnapshot:
    """A conference as Twilio reports it."""

    sid: str
    friendly_name: str
    status: str  # init | in-progress | completed
    reason_conference_ended: str | None = None


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A call (one leg) as Twilio reports it."""

    sid: str
    status: str  # queued | ringing | in-progress | completed | busy | failed | no-answer | canceled
    from_: str
    to: str
    direction: str


@dataclass(frozen=True, slots=True)
class RecordingSnapshot:
    """A conference recording as Twilio reports it."""

    sid: str
    conference_sid: str
    status: str  # in-progress | paused | stopped | processing | completed | absent
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class DialRequest:
    """Add a participant to a conference by dialing `to` (Twilio CreateParticipant)."""

    from_: str
    to: str
    label: str
    status_callback: str
    status_callback_events: Sequence[str] = ("initiated", "ringing", "answered", "completed")
    conference_status_callback: str | None = None
    conference_status_callback_events: Sequence[str] = ()
    timeout_s: int | None = None
    muted: bool = False
    # CreateParticipant has no Hold/HoldUrl: a leg cannot join on hold. The adapter rejects hold=True
    # (ValueError) and ignores hold_url; hold a joined leg with update_participant instead.
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    beep: bool = False
    wait_url: str | None = None
    wait_method: str | None = None  # sent only with wait_url (Twilio GETs its own music when there is none)
    hold_url: str | None = None
    conference_record: bool = False
    conference_recording_status_callback: str | None = None
    conference_recording_status_callback_events: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ParticipantUpdate:
    """Fields to change on a live participant; None leaves a field as it is (UpdateParticipant)."""

    muted: bool | None = None
    hold: bool | None = None
    hold_url: str | None = None
    hold_method: str | None = None
    coaching: bool | None = None
    call_sid_to_coach: str | None = None
    end_conference_on_exit: bool | None = None
    announce_url: str | None = None  # play this to the participant (announcement-end / -fail report the end)
    announce_method: str | None = None


RecordingAction = Literal["paused", "in-progress", "stopped"]
CallEndStatus = Literal["canceled", "completed"]


class TwilioGateway(Protocol):
    """What confctl needs from Twilio. Every method raises TwilioError or TwilioUnavailable on failure."""

    async def create_participant(self, conference: str, request: DialRequest) -> ParticipantSnapshot:
        """Dial `request.to` into `conference` (a ConferenceSid or FriendlyName). Never retried."""
        ...

    async def update_participant(
        self, conference_sid: str, participant: str, update: ParticipantUpdate
    ) -> ParticipantSnapshot:
        """Change a live participant (`participant` is a CallSid or a label)."""
        ...

    async def remove_participant(self, conference_sid: str, participant: str) -> None:
        """Kick a participant out of the conference (DELETE)."""
        ...

    async def list_participants(self, conference_sid: str) -> list[ParticipantSnapshot]:
        """The live participants of a conference."""
        ...

    async def fetch_conference(self, conference_sid: str) -> ConferenceSnapshot:
        """One conference by SID."""
        ...

    async def find_conference(self, friendly_name: str) -> ConferenceSnapshot | None:
        """The newest conference with this FriendlyName, or None."""
        ...

    async def end_conference(self, conference_sid: str) -> ConferenceSnapshot:
        """End the conference: every leg leaves (UpdateConference Status=completed)."""
        ...

    async def announce_to_conference(self, conference_sid: str, url: str, method: str) -> ConferenceSnapshot:
        """Play `url` to everyone in the conference (UpdateConference AnnounceUrl)."""
        ...

    async def list_recordings(self, conference_sid: str) -> list[RecordingSnapshot]:
        """The conference's recordings."""
        ...

    async def update_recording(
        self,
        conference_sid: str,
        recording_sid: str,
        status: RecordingAction,
        pause_behavior: Literal["skip", "silence"] | None = None,
    ) -> RecordingSnapshot:
        """Pause, resume or stop a conference recording (`recording_sid` may be `Twilio.CURRENT`)."""
        ...

    async def fetch_call(self, call_sid: str) -> CallSnapshot:
        """One call by SID."""
        ...

    async def hang_up_call(self, call_sid: str) -> CallSnapshot:
        """End a call whatever its state: `canceled` while ringing, `completed` once answered."""
        ...

    async def create_call(
        self,
        to: str,
        from_: str,
        url: str | None = None,
        twiml: str | None = None,
        status_callback: str | None = None,
        status_callback_events: Sequence[str] = (),
        timeout_s: int | None = None,
    ) -> CallSnapshot:
        """Place an outbound call that runs `url`'s TwiML (or `twiml`; exactly one). Never retried."""
        ...

    async def list_calls(self, status: str | None = None, limit: int = 50) -> list[CallSnapshot]:
        """The newest calls (at most `limit`), optionally only those in `status`."""
        ...

    async def update_call(self, call_sid: str, status: CallEndStatus) -> CallSnapshot:
        """Set a call's status: `canceled` ends a queued or ringing call, `completed` one in progress."""
        ...

    async def fetch_participant(self, conference_sid: str, participant: str) -> ParticipantSnapshot:
        """One live participant (`participant` is a CallSid or a label)."""
        ...

    async def fetch_recording(self, conference_sid: str, recording_sid: str) -> RecordingSnapshot:
        """One conference recording by its RE SID (the spec takes no `Twilio.CURRENT` here)."""
        ...

    async def list_conferences(
        self, friendly_name: str | None = None, status: str | None = None
    ) -> list[ConferenceSnapshot]:
        """Conferences, newest first, optionally filtered by FriendlyName and status."""
        ...
