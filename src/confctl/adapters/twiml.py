"""TwiML answers, built with the twilio SDK's builder so no caller-supplied text is ever spliced into XML."""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import Dial, VoiceResponse

from confctl.service.gateway import CONFERENCE_STATUS_EVENTS, RECORDING_STATUS_EVENTS

CONFERENCE_EVENTS = " ".join(CONFERENCE_STATUS_EVENTS)
RECORDING_EVENTS = " ".join(RECORDING_STATUS_EVENTS)


@dataclass(frozen=True, slots=True)
class ConferenceTwiml:
    """What the voice webhook puts the caller into."""

    conference_name: str
    label: str
    status_callback: str
    wait_url: str | None = None
    # Twilio POSTs a waitUrl by default, and says to GET static audio (so it can cache it); a failed fetch
    # leaves the conference "not fully established". Sent only with a wait_url: without one Twilio GETs its
    # own music.
    wait_method: str = "GET"
    record: bool = False
    recording_status_callback: str | None = None


def dial_conference(spec: ConferenceTwiml) -> str:
    """`<Response><Dial><Conference …>name</Conference></Dial></Response>` as a string."""
    response = VoiceResponse()
    dial = Dial()
    extra: dict[str, str] = {}
    if spec.record:
        extra["record"] = "record-from-start"
        if spec.recording_status_callback:
            extra["recording_status_callback"] = spec.recording_status_callback
            extra["recording_status_callback_event"] = RECORDING_EVENTS
    dial.conference(
        spec.conference_name,
        participant_label=spec.label,
        start_conference_on_enter=True,
        # When the customer hangs up, the call is over for everyone (set here, before any hold, because
        # Twilio ignores end-on-exit changes on a held leg).
        end_conference_on_exit=True,
        beep=False,
        wait_url=spec.wait_url,
        wait_method=spec.wait_method if spec.wait_url else None,
        status_callback=spec.status_callback,
        status_callback_event=CONFERENCE_EVENTS,
        status_callback_method="POST",
        **extra,
    )
    response.append(dial)
    return str(response)
