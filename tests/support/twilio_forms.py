"""Builders of the form posts Twilio sends, signed as Twilio signs them, for webhook tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "test-auth-token"
PUBLIC_URL = "https://confctl.example.com"
T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def sign(path: str, params: dict[str, str], token: str = AUTH_TOKEN, public_url: str = PUBLIC_URL) -> str:
    """X-Twilio-Signature for a POST of `params` to `public_url + path`."""
    return str(RequestValidator(token).compute_signature(public_url + path, params))


async def post_signed(
    client: httpx.AsyncClient, path: str, params: dict[str, str], token: str = AUTH_TOKEN
) -> httpx.Response:
    """POST a form the way Twilio does, with its signature."""
    return await client.post(path, data=params, headers={"X-Twilio-Signature": sign(path, params, token)})


@dataclass(frozen=True)
class Callback:
    """One webhook delivery: where and what."""

    path: str
    params: dict[str, str]


def voice(call_sid: str, caller: str = "+15551230001", called: str = "+15559990000") -> Callback:
    return Callback("/twilio/voice", {
        "CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": called,
        "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound",
    })


def conference_event(
    name: str, conference_sid: str, seq: int, event: str, *, call_sid: str | None = None,
    label: str | None = None, muted: bool = False, hold: bool = False, coaching: bool = False,
    end_on_exit: bool = False, extra: dict[str, str] | None = None,
) -> Callback:
    params = {
        "ConferenceSid": conference_sid, "FriendlyName": name, "AccountSid": ACCOUNT_SID,
        "SequenceNumber": str(seq), "StatusCallbackEvent": event,
        "Timestamp": format_datetime(T0 + timedelta(seconds=seq), usegmt=True),
    }
    if call_sid is not None:
        params |= {
            "CallSid": call_sid, "Muted": str(muted).lower(), "Hold": str(hold).lower(),
            "Coaching": str(coaching).lower(), "EndConferenceOnExit": str(end_on_exit).lower(),
            "StartConferenceOnEnter": "true",
        }
        if label is not None:
            params["ParticipantLabel"] = label
    return Callback("/twilio/conference-status", params | (extra or {}))


def whole_call(customer_sid: str, agent_sid: str, conference_sid: str) -> list[Callback]:
    """Voice, customer joins, agent joins, start, hold, unhold, mute, customer leaves, end."""
    name = f"room-{customer_sid}"
    c = {"call_sid": customer_sid, "label": "customer", "end_on_exit": True}
    a = {"call_sid": agent_sid, "label": "agent-alice"}
    return [
        voice(customer_sid),
        conference_event(name, conference_sid, 1, "participant-join", **c),  # type: ignore[arg-type]
        conference_event(name, conference_sid, 2, "participant-join", **a),  # type: ignore[arg-type]
        conference_event(name, conference_sid, 3, "conference-start"),
        conference_event(name, conference_sid, 4, "participant-hold", hold=True, **c),  # type: ignore[arg-type]
        conference_event(name, conference_sid, 5, "participant-unhold", **c),  # type: ignore[arg-type]
        conference_event(name, conference_sid, 6, "participant-mute", muted=True, **a),  # type: ignore[arg-type]
        conference_event(name, conference_sid, 7, "participant-leave", **c,  # type: ignore[arg-type]
                         extra={"ReasonParticipantLeft": "participant_hung_up", "ParticipantCallStatus": "completed"}),
        conference_event(name, conference_sid, 8, "participant-leave", muted=True, **a,  # type: ignore[arg-type]
                         extra={"ReasonParticipantLeft": "conference_ended_via_api",
                                "ParticipantCallStatus": "completed"}),
        conference_event(name, conference_sid, 9, "conference-end",
                         extra={"ReasonConferenceEnded": "participant-with-end-conference-on-exit-left",
                                "CallSidEndingConference": customer_sid,
                                "ParticipantLabelEndingConference": "customer"}),
    ]
