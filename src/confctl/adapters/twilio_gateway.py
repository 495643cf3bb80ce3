"""The TwilioGateway port on the twilio SDK's `*_async` methods, over `HttpxTwilioHttpClient`.

One adapter for production, `confctl dev` and tests: only the HTTP client's base URL (and, in tests,
its transport) changes. Retries follow `twilio_retry`: repeatable requests are retried on transient
failures, creates only when Twilio cannot have acted on them.

The SDK puts path parameters into URLs with plain `str.format`, so every one is percent-encoded here
(FriendlyNames may hold spaces, `/`, `?`, ...; labels spaces, but never `/`, which Twilio refuses: 16024).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.adapters.twilio_retry import RetryPolicy, call_twilio
from confctl.adapters.twilio_snapshots import (
    call_snapshot,
    conference_snapshot,
    newest_first,
    participant_snapshot,
    recording_snapshot,
)
from confctl.service.gateway import (
    CallEndStatus,
    CallSnapshot,
    ConferenceSnapshot,
    DialRequest,
    ParticipantSnapshot,
    ParticipantUpdate,
    RecordingAction,
    RecordingSnapshot,
    TwilioError,
)

T = TypeVar("T")

_RINGING = frozenset({"queued", "ringing", "initiated"})
_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def _seg(value: str) -> str:
    """One URL path segment: the SDK does not encode, so `a/b` would otherwise become two segments."""
    return quote(value, safe="")


def _present(fields: Mapping[str, object]) -> dict[str, Any]:
    """Keyword arguments for the SDK without the ones left unset (None or an empty list)."""
    return {k: v for k, v in fields.items() if v is not None and v != []}


def dial_params(request: DialRequest) -> dict[str, Any]:
    """CreateParticipant keyword arguments for `request` (the SDK maps them to PascalCase form fields)."""
    if request.hold:
        raise ValueError("CreateParticipant has no Hold: hold the participant once it has joined")
    return _present(
        {
            "from_": request.from_,
            "to": request.to,
            "label": request.label,
            "status_callback": request.status_callback,
            "status_callback_event": list(request.status_callback_events),
            "conference_status_callback": request.conference_status_callback,
            "conference_status_callback_event": list(request.conference_status_callback_events),
            "timeout": request.timeout_s,
            "muted": request.muted,
            # Coaching=false next to a CallSidToCoach would contradict it; Twilio infers true from the SID.
            "coaching": True if request.coaching else None,
            "call_sid_to_coach": request.call_sid_to_coach,
            "start_conference_on_enter": request.start_conference_on_enter,
            "end_conference_on_exit": request.end_conference_on_exit,
            # Beep is a string enum (true|false|onEnter|onExit), not a boolean, in the SDK.
            "beep": "true" if request.beep else "false",
            "wait_url": request.wait_url,
            "wait_method": request.wait_method if request.wait_url else None,
            # ConferenceRecord is a string enum too; only the first participant's value counts.
            "conference_record": "record-from-start" if request.conference_record else None,
            "conference_recording_status_callback": request.conference_recording_status_callback,
            "conference_recording_status_callback_event": list(request.conference_recording_status_callback_events),
        }
    )


class SdkTwilioGateway:
    """TwilioGateway on `twilio.rest.Client`; raises TwilioError / TwilioUnavailable on failure."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        http_client: HttpxTwilioHttpClient | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        api_key: tuple[str, str] | None = None,
    ) -> None:
        """Use `http_client` if given (the caller closes it), else build one for `base_url`/`timeout_s`.

        `timeout_s` bounds each HTTP request; `retry` bounds the attempts and the overall time per call.
        Requests authenticate as `account_sid` with `auth_token`, or, given `api_key` (its SK… SID and its
        secret), as that key: Twilio's recommendation for production. The URLs name `account_sid` either way.
        """
        if http_client is not None and base_url is not None:
            raise ValueError("pass base_url to the http_client, not to the gateway")
        self._owns_http = http_client is None
        self._http = http_client or HttpxTwilioHttpClient(base_url=base_url, timeout=timeout_s)
        username, password = api_key or (account_sid, auth_token)
        self._client = Client(username, password, account_sid, http_client=self._http)
        self._retry = retry or RetryPolicy()

    async def aclose(self) -> None:
        """Close the HTTP client if this gateway created it."""
        if self._owns_http:
            await self._http.aclose()

    async def _repeatable(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        return await call_twilio(self._retry, what, send, repeatable=True)

    async def _create(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        return await call_twilio(self._retry, what, send, repeatable=False)

    def _conference(self, conference: str) -> Any:
        return self._client.conferences(_seg(conference))

    def _participant(self, conference_sid: str, participant: str) -> Any:
        return self._conference(conference_sid).participants(_seg(participant))

    # Participants

    async def create_participant(self, conference: str, request: DialRequest) -> ParticipantSnapshot:
        """Dial `request.to` into `conference` (a ConferenceSid or FriendlyName). Never retried once sent."""
        params = dial_params(request)
        participants = self._conference(conference).participants
        created = await self._create("CreateParticipant", lambda: participants.create_async(**params))
        return participant_snapshot(created)

    async def update_participant(
        self, conference_sid: str, participant: str, update: ParticipantUpdate
    ) -> ParticipantSnapshot:
        """Change a live participant (`participant` is a CallSid or a label)."""
        params = _present(
            {
                "muted": update.muted,
                "hold": update.hold,
                "hold_url": update.hold_url,
                "hold_method": update.hold_method if update.hold_url else None,
                "coaching": update.coaching,
                "call_sid_to_coach": update.call_sid_to_coach,
                "end_conference_on_exit": update.end_conference_on_exit,
                "announce_url": update.announce_url,
                "announce_method": update.announce_method if update.announce_url else None,
            }
        )
        ctx = self._participant(conference_sid, participant)
        updated = await self._repeatable("UpdateParticipant", lambda: ctx.update_async(**params))
        return participant_snapshot(updated)

    async def remove_participant(self, conference_sid: str, participant: str) -> None:
        """Kick a participant out of the conference (DELETE)."""
        ctx = self._participant(conference_sid, participant)
        tries = 0

        async def delete() -> None:
            nonlocal tries
            tries += 1
            try:
                await ctx.delete_async()
            except TwilioRestException as exc:
                # A retry after a lost answer finds the participant already gone: that is success.
                if not (exc.status == 404 and tries > 1):
                    raise

        await self._repeatable("DeleteParticipant", delete)

    async def fetch_participant(self, conference_sid: str, participant: str) -> ParticipantSnapshot:
        """One live participant (`participant` is a CallSid or a label)."""
        ctx = self._participant(conference_sid, participant)
        return participant_snapshot(await self._repeatable("FetchParticipant", ctx.fetch_async))

    async def list_participants(self, conference_sid: str) -> list[ParticipantSnapshot]:
        """The live participants of a conference."""
        participants = self._conference(conference_sid).participants
        found = await self._repeatable("ListParticipant", participants.list_async)
        return [participant_snapshot(p) for p in found]

    # Conferences

    async def fetch_conference(self, conference_sid: str) -> ConferenceSnapshot:
        """One conference by SID."""
        ctx = self._conference(conference_sid)
        return conference_snapshot(await self._repeatable("FetchConference", ctx.fetch_async))

    async def list_conferences(
        self, friendly_name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[ConferenceSnapshot]:
        """Conferences, newest first, optionally filtered by FriendlyName and status."""
        params = _present({"friendly_name": friendly_name, "status": status, "limit": limit})
        conferences = self._client.conferences
        found = await self._repeatable("ListConference", lambda: conferences.list_async(**params))
        return [conference_snapshot(c) for c in newest_first(found)]

    async def find_conference(self, friendly_name: str) -> ConferenceSnapshot | None:
        """The newest conference with this FriendlyName, or None."""
        found = await self.list_conferences(friendly_name=friendly_name)
        return found[0] if found else None

    async def end_conference(self, conference_sid: str) -> ConferenceSnapshot:
        """End the conference: every leg leaves (UpdateConference Status=completed)."""
        ctx = self._conference(conference_sid)
        ended = await self._repeatable("UpdateConference", lambda: ctx.update_async(status="completed"))
        return conference_snapshot(ended)

    async def announce_to_conference(self, conference_sid: str, url: str, method: str) -> ConferenceSnapshot:
        """Play `url` to everyone in the conference (UpdateConference AnnounceUrl). Retried like any update: a
        repeat after a lost answer plays the announcement twice, which beats not playing it."""
        ctx = self._conference(conference_sid)
        updated = await self._repeatable(
            "UpdateConference", lambda: ctx.update_async(announce_url=url, announce_method=method))
        return conference_snapshot(updated)

    # Conference recordings

    async def list_recordings(self, conference_sid: str) -> list[RecordingSnapshot]:
        """The conference's recordings."""
        recordings = self._conference(conference_sid).recordings
        found = await self._repeatable("ListConferenceRecording", recordings.list_async)
        return [recording_snapshot(r) for r in found]

    async def fetch_recording(self, conference_sid: str, recording_sid: str) -> RecordingSnapshot:
        """One conference recording by its RE SID (the spec takes no `Twilio.CURRENT` here)."""
        ctx = self._conference(conference_sid).recordings(_seg(recording_sid))
        return recording_snapshot(await self._repeatable("FetchConferenceRecording", ctx.fetch_async))

    async def update_recording(
        self,
        conference_sid: str,
        recording_sid: str,
        status: RecordingAction,
        pause_behavior: Literal["skip", "silence"] | None = None,
    ) -> RecordingSnapshot:
        """Pause, resume or stop a conference recording (`recording_sid` may be `Twilio.CURRENT`)."""
        ctx = self._conference(conference_sid).recordings(_seg(recording_sid))
        params = _present({"status": status, "pause_behavior": pause_behavior})
        updated = await self._repeatable("UpdateConferenceRecording", lambda: ctx.update_async(**params))
        return recording_snapshot(updated)

    # Calls

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
        """Place a call that runs `url`'s TwiML (or `twiml`; exactly one). Never retried once sent."""
        if (url is None) == (twiml is None):
            raise ValueError("CreateCall needs exactly one of url and twiml")
        params = _present(
            {
                "to": to,
                "from_": from_,
                "url": url,
                "twiml": twiml,
                "status_callback": status_callback,
                "status_callback_event": list(status_callback_events),
                "timeout": timeout_s,
            }
        )
        calls = self._client.calls
        return call_snapshot(await self._create("CreateCall", lambda: calls.create_async(**params)))

    async def list_calls(self, status: str | None = None, limit: int = 50) -> list[CallSnapshot]:
        """The newest calls (at most `limit`), optionally only those in `status`."""
        params = _present({"status": status, "limit": limit})
        calls = self._client.calls
        found = await self._repeatable("ListCall", lambda: calls.list_async(**params))
        return [call_snapshot(c) for c in found]

    async def fetch_call(self, call_sid: str) -> CallSnapshot:
        """One call by SID."""
        ctx = self._client.calls(_seg(call_sid))
        return call_snapshot(await self._repeatable("FetchCall", ctx.fetch_async))

    async def update_call(self, call_sid: str, status: CallEndStatus) -> CallSnapshot:
        """Set a call's status: `canceled` ends a queued or ringing call, `completed` one in progress."""
        ctx = self._client.calls(_seg(call_sid))
        updated = await self._repeatable("UpdateCall", lambda: ctx.update_async(status=status))
        return call_snapshot(updated)

    async def hang_up_call(self, call_sid: str) -> CallSnapshot:
        """End a call whatever its state: `canceled` while ringing, `completed` once answered."""
        call = await self.fetch_call(call_sid)
        if call.status in _ENDED:
            return call
        try:
            if call.status in _RINGING:
                call = await self.update_call(call_sid, "canceled")
            # Also when the call was answered between the fetch and the cancel, which cancel ignores.
            if call.status not in _ENDED:
                call = await self.update_call(call_sid, "completed")
        except TwilioError:
            # The call may have ended on its own meanwhile (Twilio then refuses the update).
            call = await self.fetch_call(call_sid)
            if call.status not in _ENDED:
                raise
        return call
