"""Twilio's form fields turned into domain facts (and dedupe keys); a missing field is a 400."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from confctl.domain import events as ev
from confctl.entry.errors import ApiProblem

Form = Mapping[str, str]

PARTICIPANT_EVENTS: dict[str, type[ev.ParticipantSeen]] = {
    "participant-join": ev.ParticipantJoined,
    "participant-leave": ev.ParticipantLeft,
    "participant-mute": ev.ParticipantMuted,
    "participant-unmute": ev.ParticipantUnmuted,
    "participant-hold": ev.ParticipantHeld,
    "participant-unhold": ev.ParticipantUnheld,
    "participant-modify": ev.ParticipantModified,
}


def required(form: Form, *names: str) -> list[str]:
    """The values of required fields, or a 400 naming every missing one."""
    missing = [n for n in names if not form.get(n)]
    if missing:
        raise ApiProblem(400, "invalid_request", f"missing Twilio field(s): {', '.join(missing)}")
    return [form[n] for n in names]


def _flag(form: Form, name: str, default: bool = False) -> bool:
    value = form.get(name)
    return default if value is None else value.strip().lower() == "true"


def _int(form: Form, name: str) -> int:
    try:
        return int(form[name])
    except (KeyError, ValueError) as exc:
        raise ApiProblem(400, "invalid_request", f"{name} must be an integer") from exc


def timestamp(form: Form, now: datetime) -> str:
    """Twilio's RFC 2822 `Timestamp` as ISO 8601 UTC; our clock when Twilio sent none."""
    raw = form.get("Timestamp")
    if raw:
        try:
            return parsedate_to_datetime(raw).astimezone(UTC).isoformat()
        except (TypeError, ValueError):
            pass
    return now.astimezone(UTC).isoformat()


def voice(form: Form, now: datetime, record: bool) -> ev.ConferenceCreated:
    """The voice request of an inbound call."""
    call_sid, caller, called = required(form, "CallSid", "From", "To")
    return ev.ConferenceCreated(customer_call_sid=call_sid, caller=caller, called=called, record=record,
                                at=now.astimezone(UTC).isoformat())


@dataclass(frozen=True, slots=True)
class ConferenceCallback:
    """A parsed conference status callback; `fact` is None for events confctl does not track."""

    friendly_name: str
    sequence: int
    dedupe_key: str
    fact: ev.DomainEvent | None


def conference_status(form: Form, now: datetime) -> ConferenceCallback:
    """A conference status callback."""
    conference_sid, name, kind = required(form, "ConferenceSid", "FriendlyName", "StatusCallbackEvent")
    required(form, "SequenceNumber")
    sequence = _int(form, "SequenceNumber")
    at = timestamp(form, now)
    key = f"conference:{conference_sid}:{sequence}:{kind}"
    fact: ev.DomainEvent | None = None
    if kind == "conference-start":
        fact = ev.ConferenceStarted(conference_sid=conference_sid, sequence=sequence, at=at)
    elif kind == "conference-end":
        fact = ev.ConferenceEnded(
            conference_sid=conference_sid, sequence=sequence, at=at,
            reason=form.get("ReasonConferenceEnded"),
            ended_by_call_sid=form.get("CallSidEndingConference") or None,
            ended_by_label=form.get("ParticipantLabelEndingConference") or None,
        )
    elif kind in PARTICIPANT_EVENTS:
        (call_sid,) = required(form, "CallSid")
        flags = ev.ParticipantFlags(
            muted=_flag(form, "Muted"),
            hold=_flag(form, "Hold"),
            coaching=_flag(form, "Coaching"),
            call_sid_to_coach=form.get("CallSidToCoach") or None,
            end_conference_on_exit=_flag(form, "EndConferenceOnExit"),
            start_conference_on_enter=_flag(form, "StartConferenceOnEnter", default=True),
        )
        common = {"conference_sid": conference_sid, "call_sid": call_sid,
                  "label": form.get("ParticipantLabel") or None, "sequence": sequence, "at": at,
                  "flags": flags}
        if kind == "participant-leave":
            fact = ev.ParticipantLeft(**common, reason=form.get("ReasonParticipantLeft") or None,  # type: ignore[arg-type]
                                      call_status=form.get("ParticipantCallStatus") or None)
        else:
            fact = PARTICIPANT_EVENTS[kind](**common)  # type: ignore[arg-type]
    return ConferenceCallback(friendly_name=name, sequence=sequence, dedupe_key=key, fact=fact)


def call_status(form: Form, now: datetime, label: str | None = None) -> tuple[ev.CallStatusChanged, str]:
    """A call status callback and its dedupe key."""
    call_sid, status = required(form, "CallSid", "CallStatus")
    sequence = _int(form, "SequenceNumber") if form.get("SequenceNumber") else -1
    sip = form.get("SipResponseCode")
    fact = ev.CallStatusChanged(
        call_sid=call_sid, status=status, sequence=sequence, at=timestamp(form, now),
        sip_response_code=int(sip) if sip and sip.isdigit() else None, label=label,
    )
    return fact, f"call:{call_sid}:{status}:{sequence}"


def recording_status(form: Form, now: datetime) -> tuple[ev.RecordingStatusChanged, str]:
    """A recording status callback and its dedupe key."""
    recording_sid, status = required(form, "RecordingSid", "RecordingStatus")
    fact = ev.RecordingStatusChanged(
        recording_sid=recording_sid, status=status, url=form.get("RecordingUrl") or None,
        at=timestamp(form, now),
    )
    return fact, f"recording:{recording_sid}:{status}"
