"""One effect on Twilio: the request it makes, the event that records Twilio's answer, and what to store
when Twilio refuses or cannot be reached. The outbox worker (`service/outbox.py`) decides when each runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from confctl.domain import command_events as ce
from confctl.domain import effects as fx
from confctl.domain.effects import Plan
from confctl.domain.events import DomainEvent, ParticipantFlags
from confctl.domain.model import Conference
from confctl.service.conferences import ConferenceRepository
from confctl.service.gateway import (
    CONFERENCE_STATUS_EVENTS,
    RECORDING_STATUS_EVENTS,
    DialRequest,
    ParticipantSnapshot,
    ParticipantUpdate,
    TwilioError,
    TwilioGateway,
)
from confctl.service.ports import Clock
from confctl.service.webhook_urls import CONNECTION_OVERRIDES, WebhookUrls

log = structlog.get_logger(__name__)

# How Twilio fetches an announcement's URL (its AnnounceMethod default is POST): GET, as for the music, since an
# announcement is most often a static audio file, which a POST would not fetch from many servers (S3 refuses it).
ANNOUNCE_METHOD = "GET"


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What every dialed leg needs: our public URL for callbacks, caller ID, music."""

    public_url: str
    caller_id: str
    hold_music_url: str | None = None
    wait_url: str | None = None
    wait_method: str = "GET"  # how Twilio fetches wait_url and a hold URL: GET lets it cache static audio
    hold_method: str = "GET"
    record: bool = False
    connection_overrides: str = CONNECTION_OVERRIDES  # on every callback URL (service/webhook_urls.py)


class EffectRunner:
    """Performs single effects through the TwilioGateway."""

    def __init__(self, conferences: ConferenceRepository, gateway: TwilioGateway, clock: Clock,
                 settings: CallSettings) -> None:
        self.conferences = conferences
        self.gateway = gateway
        self.clock = clock
        self.settings = settings

    def now(self) -> str:
        return self.clock.now().isoformat()

    def failure(self, effect: fx.Effect, exc: Exception, transfer_id: str | None) -> Callable[[Conference], Plan]:
        """The decision that stores an effect's failure (and fails its transfer when one was moving on)."""
        code = exc.code if isinstance(exc, TwilioError) else None
        reason = exc.message if isinstance(exc, TwilioError) else f"twilio unavailable: {exc}"
        at = self.now()

        def decide(state: Conference) -> Plan:
            events: list[DomainEvent] = []
            if isinstance(effect, fx.Dial):
                events.append(ce.ParticipantDialFailed(label=effect.label, reason=reason, at=at, twilio_code=code))
            else:
                events.append(ce.CommandFailed(command=_name(effect), target=getattr(effect, "label", None),
                                               reason=reason, at=at, twilio_code=code))
            transfer = state.transfer(transfer_id) if transfer_id else None
            if transfer is not None and transfer.is_active and not isinstance(effect, fx.Dial):
                events.append(ce.TransferFailed(transfer_id=transfer.id, at=at, reason=f"twilio_error: {reason}"))
            return Plan(events=events)

        return decide

    async def reconcile(self, conference_id: str, effect: fx.Effect) -> DomainEvent | None:
        """What Twilio already did of an effect whose outcome was lost (its process died): for a dial, the
        leg Twilio has under that label (or the CallSid our log already has for it); None when Twilio has
        nothing, so the effect may be sent. Effects that Twilio may repeat harmlessly are simply sent again.
        """
        if not isinstance(effect, fx.Dial):
            return None
        at = self.now()
        state = await self.conferences.load(conference_id)
        ours = state.find(effect.label)
        if ours is not None and ours.call_sid:
            return ce.ParticipantDialed(label=effect.label, call_sid=ours.call_sid, at=at)
        sid = state.twilio_sid
        if not sid:
            found = await self.gateway.find_conference(conference_id)
            if found is None:
                return None
            sid = found.sid
        try:
            snapshot = await self.gateway.fetch_participant(sid, effect.label)
        except TwilioError as exc:
            if exc.status == 404:
                return None
            raise
        return _dialed(effect.label, snapshot, at)

    async def _conference_ref(self, state: Conference, *, sid_required: bool) -> str:
        """The ConferenceSid Twilio wants in its paths (CreateParticipant also takes the FriendlyName)."""
        if state.twilio_sid:
            return state.twilio_sid
        if not sid_required:
            return state.id
        conference_id = state.id
        found = await self.gateway.find_conference(conference_id)
        if found is None:
            raise TwilioError(404, 20404, f"Twilio has no conference named {conference_id}")
        return found.sid

    def dial_request(self, conference_id: str, dial: fx.Dial) -> DialRequest:
        """Twilio's CreateParticipant for a Dial effect: the same conference settings as the voice webhook's
        TwiML (status callback and events, recording, wait music), since whichever leg joins first sets them
        for the whole conference (a dialed agent can connect before the customer's TwiML is run)."""
        urls = WebhookUrls(self.settings.public_url, self.settings.connection_overrides)
        record = self.settings.record
        return DialRequest(
            from_=self.settings.caller_id,
            to=dial.to,
            label=dial.label,
            status_callback=urls.call_status(conference_id, dial.label),
            conference_status_callback=urls.conference_status(),
            conference_status_callback_events=CONFERENCE_STATUS_EVENTS,
            timeout_s=dial.timeout_s,
            muted=dial.muted,
            coaching=dial.coaching,
            call_sid_to_coach=dial.call_sid_to_coach,
            end_conference_on_exit=dial.end_conference_on_exit,
            wait_url=self.settings.wait_url,
            wait_method=self.settings.wait_method,
            conference_record=record,
            conference_recording_status_callback=urls.recording_status(conference_id) if record else None,
            conference_recording_status_callback_events=RECORDING_STATUS_EVENTS if record else (),
        )

    async def one(self, conference_id: str, effect: fx.Effect) -> DomainEvent:
        """Send one effect to Twilio; the event that records Twilio's answer."""
        at = self.now()
        state = await self.conferences.load(conference_id)  # cached: reads only what was stored since
        match effect:
            case fx.Dial():
                ref = await self._conference_ref(state, sid_required=False)
                snapshot = await self.gateway.create_participant(ref, self.dial_request(conference_id, effect))
                return _dialed(effect.label, snapshot, at)
            case fx.Update():
                sid = await self._conference_ref(state, sid_required=True)
                # Twilio's answer reflects every callback up to the one before the request, no later one.
                before = state.last_sequence
                snapshot = await self.gateway.update_participant(sid, effect.call_sid, ParticipantUpdate(
                    muted=effect.muted, hold=effect.hold, hold_url=effect.hold_url, coaching=effect.coaching,
                    call_sid_to_coach=effect.call_sid_to_coach, end_conference_on_exit=effect.end_conference_on_exit,
                    hold_method=self.settings.hold_method,
                ))
                return _updated(effect.label, snapshot, before, at)
            case fx.Kick():
                sid = await self._conference_ref(state, sid_required=True)
                try:
                    await self.gateway.remove_participant(sid, effect.call_sid)
                except TwilioError as exc:
                    # Not in the conference (any more): what the kick was for. A kick resumed after a crash
                    # that had already reached Twilio lands here.
                    if exc.status != 404:
                        raise
                return ce.CommandSucceeded(command="kick", target=effect.label, at=at)
            case fx.HangUp():
                await self.gateway.hang_up_call(effect.call_sid)
                return ce.CommandSucceeded(command="hang_up", target=effect.label, at=at)
            case fx.EndConference():
                sid = await self._conference_ref(state, sid_required=True)
                await self.gateway.end_conference(sid)
                return ce.CommandSucceeded(command="end_conference", target=None, at=at)
            case fx.Announce():
                sid = await self._conference_ref(state, sid_required=True)
                if effect.call_sid is None:
                    await self.gateway.announce_to_conference(sid, effect.url, ANNOUNCE_METHOD)
                else:
                    await self.gateway.update_participant(sid, effect.call_sid, ParticipantUpdate(
                        announce_url=effect.url, announce_method=ANNOUNCE_METHOD))
                # Twilio took it; announcement-end / announcement-fail will say how it went.
                return ce.CommandSucceeded(command="announce", target=effect.label, at=at)
            case fx.UpdateRecording():
                sid = await self._conference_ref(state, sid_required=True)
                recording = await self.gateway.update_recording(
                    sid, effect.recording_sid, effect.status,  # type: ignore[arg-type]
                    effect.pause_behavior,  # type: ignore[arg-type]
                )
                return ce.RecordingUpdated(recording_sid=recording.sid, status=recording.status, at=at)
        raise TypeError(f"unknown effect {effect!r}")  # pragma: no cover


def _dialed(label: str, p: ParticipantSnapshot, at: str) -> ce.ParticipantDialed:
    # Twilio's answer names whom a coach whispers to; its callbacks never will.
    return ce.ParticipantDialed(label=label, call_sid=p.call_sid, at=at,
                                call_sid_to_coach=p.call_sid_to_coach if p.coaching else None)


def _updated(label: str, p: ParticipantSnapshot, after_sequence: int, at: str) -> ce.ParticipantUpdated:
    flags = ParticipantFlags(muted=p.muted, hold=p.hold, coaching=p.coaching, call_sid_to_coach=p.call_sid_to_coach,
                             end_conference_on_exit=p.end_conference_on_exit,
                             start_conference_on_enter=p.start_conference_on_enter)
    return ce.ParticipantUpdated(label=label, call_sid=p.call_sid, after_sequence=after_sequence, flags=flags, at=at)


def _name(effect: fx.Effect) -> str:
    """The command an effect carries out, as `command.failed` names it: its outbox kind."""
    return fx.kind_of(effect)
