"""Twilio's form fields turned into domain facts (and dedupe keys); a missing field is a 400.

A signed callback is Twilio's word and its fact is always stored: a field that cannot be used is dropped, never
answered with an error that would lose the fact. PostgreSQL text cannot hold NUL, so `clean` replaces it with
U+FFFD, as an undecodable byte already is (the rest of the value is kept, and it can never be mistaken for a
value Twilio did send). An integer field (SequenceNumber, SipResponseCode) that is not plain ASCII digits
within int64 is dropped: a SequenceNumber of 10**30 kept would outrank every later snapshot of that leg.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from confctl.domain import announcements as an
from confctl.domain import events as ev
from confctl.entry.errors import ApiProblem
from confctl.entry.schemas import INT64_MAX

Form = Mapping[str, str]

# The `sequence` of a fact whose SequenceNumber is absent or unusable: below every real one, so its snapshot
# never outranks one that has a number (the domain's convention for call status callbacks without one).
NO_SEQUENCE = -1
# Not str.isdigit() nor int(): they accept "²" (which int() then refuses), "١٢", "+4", " 4" and "4_0".
_DIGITS = re.compile(r"[0-9]{1,19}")

PARTICIPANT_EVENTS: dict[str, type[ev.ParticipantSeen]] = {
    "participant-join": ev.ParticipantJoined,
    "participant-leave": ev.ParticipantLeft,
    "participant-mute": ev.ParticipantMuted,
    "participant-unmute": ev.ParticipantUnmuted,
    "participant-hold": ev.ParticipantHeld,
    "participant-unhold": ev.ParticipantUnheld,
    "participant-modify": ev.ParticipantModified,
}


# Twilio's SIDs are 34 characters; a conference's FriendlyName (our conference id) is far shorter than this bound.
# Keys, ids and index entries are built from them: PostgreSQL refuses a btree entry over ~2.7 kB, so a value that
# no Twilio could send is refused here (400) instead of failing in the database (500).
MAX_SID = 64
MAX_NAME = 512


def too_long(name: str, value: str) -> bool:
    """Whether a Twilio id field is longer than any Twilio sends."""
    return len(value) > (MAX_SID if name.endswith("Sid") else MAX_NAME)


def optional_sid(form: Form, name: str) -> str | None:
    """An optional SID field; dropped when absent, empty or longer than any Twilio sends."""
    value = form.get(name)
    return value if value and not too_long(name, value) else None


def required(form: Form, *names: str) -> list[str]:
    """The values of required fields, or a 400 naming every missing (or impossibly long) one."""
    missing = [n for n in names if not form.get(n)]
    if missing:
        raise ApiProblem(400, "invalid_request", f"missing Twilio field(s): {', '.join(missing)}")
    oversized = [n for n in names if too_long(n, form[n])]
    if oversized:
        raise ApiProblem(400, "invalid_request", f"Twilio field(s) too long to be Twilio's: {', '.join(oversized)}")
    return [form[n] for n in names]


def storable(text: str) -> str:
    """`text` with each NUL (which PostgreSQL text and jsonb cannot hold) replaced by U+FFFD."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def clean(form: Form) -> dict[str, str]:
    """The form with every name and value storable."""
    return {storable(name): storable(value) for name, value in form.items()}


def _flag(form: Form, name: str, default: bool = False) -> bool:
    value = form.get(name)
    return default if value is None else value.strip().lower() == "true"


def count(raw: str | None) -> int | None:
    """A non-negative integer field as an int; None when absent, not plain ASCII digits, or beyond int64."""
    if raw is None or not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= INT64_MAX else None


def _sequence(form: Form, *disambiguators: str | None) -> tuple[int, str]:
    """The SequenceNumber (NO_SEQUENCE when absent or unusable) and what stands for it in the dedupe key.

    An unusable number is keyed by a digest of its raw text (and `disambiguators`): a repeated delivery is
    still free, and two different callbacks that both carry garbage are not taken for one.
    """
    raw = form.get("SequenceNumber")
    value = count(raw)
    if value is not None:
        return value, str(value)
    if not raw:
        return NO_SEQUENCE, str(NO_SEQUENCE)
    digest = hashlib.sha256("\n".join([raw, *(d or "" for d in disambiguators)]).encode()).hexdigest()[:16]
    return NO_SEQUENCE, f"x{digest}"


def timestamp(form: Form, now: datetime) -> str:
    """Twilio's RFC 2822 `Timestamp` as ISO 8601 UTC; our clock when Twilio sent none."""
    raw = form.get("Timestamp")
    if raw:
        try:
            return parsedate_to_datetime(raw).astimezone(UTC).isoformat()
        except (TypeError, ValueError, OverflowError):  # OverflowError: a time beyond year 9999 in UTC
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
    # Twilio always sends SequenceNumber on these (its absence is a 400); one it sent that is unusable is dropped.
    required(form, "SequenceNumber")
    sequence, sequence_key = _sequence(form, optional_sid(form, "CallSid"))
    at = timestamp(form, now)
    key = f"conference:{conference_sid}:{sequence_key}:{kind}"
    fact: ev.DomainEvent | None = None
    if kind == "conference-start":
        fact = ev.ConferenceStarted(conference_sid=conference_sid, sequence=sequence, at=at)
    elif kind == "conference-end":
        fact = ev.ConferenceEnded(
            conference_sid=conference_sid, sequence=sequence, at=at,
            reason=form.get("ReasonConferenceEnded"),
            ended_by_call_sid=optional_sid(form, "CallSidEndingConference"),
            ended_by_label=form.get("ParticipantLabelEndingConference") or None,
        )
    elif kind in PARTICIPANT_EVENTS:
        (call_sid,) = required(form, "CallSid")
        # Twilio's conference callbacks carry `Coaching` but not `CallSidToCoach`: whom a coach whispers to is
        # taken from confctl's own requests and Twilio's REST answers (domain/coaching.py), never from a form.
        flags = ev.ParticipantFlags(
            muted=_flag(form, "Muted"),
            hold=_flag(form, "Hold"),
            coaching=_flag(form, "Coaching"),
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
    elif kind in ("announcement-end", "announcement-fail"):
        fact = _announcement(form, kind, conference_sid, sequence, at)
    return ConferenceCallback(friendly_name=name, sequence=sequence, dedupe_key=key, fact=fact)


def _announcement(form: Form, kind: str, conference_sid: str, sequence: int, at: str) -> an.AnnouncementEnded:
    """announcement-end / announcement-fail; the participant's CallSid and label only if it is still in."""
    url, call_sid, label = form.get("AnnounceUrl") or None, optional_sid(form, "CallSid"), form.get("ParticipantLabel")
    if kind == "announcement-fail":
        return an.AnnouncementFailed(conference_sid=conference_sid, url=url, call_sid=call_sid, label=label or None,
                                     sequence=sequence, at=at, reason=form.get("ReasonAnnouncementFailed") or None)
    return an.AnnouncementPlayed(conference_sid=conference_sid, url=url, call_sid=call_sid, label=label or None,
                                 sequence=sequence, at=at)


def call_status(form: Form, now: datetime, label: str | None = None) -> tuple[ev.CallStatusChanged, str]:
    """A call status callback and its dedupe key."""
    call_sid, status = required(form, "CallSid", "CallStatus")
    sequence, sequence_key = _sequence(form)
    fact = ev.CallStatusChanged(
        call_sid=call_sid, status=status, sequence=sequence, at=timestamp(form, now),
        sip_response_code=count(form.get("SipResponseCode")), label=label,
    )
    return fact, f"call:{call_sid}:{status}:{sequence_key}"


def recording_status(form: Form, now: datetime) -> tuple[ev.RecordingStatusChanged, str]:
    """A recording status callback and its dedupe key."""
    recording_sid, status = required(form, "RecordingSid", "RecordingStatus")
    fact = ev.RecordingStatusChanged(
        recording_sid=recording_sid, status=status, url=form.get("RecordingUrl") or None,
        at=timestamp(form, now),
    )
    return fact, f"recording:{recording_sid}:{status}"
