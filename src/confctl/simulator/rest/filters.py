"""List filters of the list operations (ListCall, ListConference, ListParticipant, ListConferenceRecording).

Date filters take `YYYY-MM-DD` and compare the UTC date: `Name` equal, `Name<` on or before,
`Name>` on or after (Twilio's inclusive reading).
"""

from __future__ import annotations

from datetime import date, datetime

from confctl.simulator.model.errors import bad_request
from confctl.simulator.model.records import Call, Conference, Participant, Recording
from confctl.simulator.rest.forms import Form


def _dates_match(query: Form, name: str, moment: datetime | None) -> bool:
    for suffix in ("", "<", ">"):
        value = query.get(name + suffix)
        if not value:
            continue
        try:
            wanted = date.fromisoformat(value[:10])
        except ValueError:
            raise bad_request(20001, f"Invalid date {value!r} for {name}{suffix}") from None
        if moment is None:
            return False
        day = moment.date()
        if (suffix == "" and day != wanted) or (suffix == "<" and day > wanted) or (suffix == ">" and day < wanted):
            return False
    return True


def _equals(query: Form, name: str, actual: str | None) -> bool:
    wanted = query.get(name)
    return not wanted or wanted == actual


def call_matches(call: Call, query: Form) -> bool:
    status = "queued" if call.status == "initiated" else call.status
    return (
        _equals(query, "To", call.to)
        and _equals(query, "From", call.from_)
        and _equals(query, "ParentCallSid", call.parent_call_sid)
        and _equals(query, "Status", status)
        and _dates_match(query, "StartTime", call.start_time)
        and _dates_match(query, "EndTime", call.end_time)
    )


def conference_matches(conference: Conference, query: Form) -> bool:
    return (
        _equals(query, "FriendlyName", conference.friendly_name)
        and _equals(query, "Status", conference.status)
        and _dates_match(query, "DateCreated", conference.date_created)
        and _dates_match(query, "DateUpdated", conference.date_updated)
    )


def participant_matches(participant: Participant, query: Form) -> bool:
    for name, actual in (("Muted", participant.muted), ("Hold", participant.hold), ("Coaching", participant.coaching)):
        wanted = query.bool(name)
        if wanted is not None and wanted != actual:
            return False
    return True


def recording_matches(recording: Recording, query: Form) -> bool:
    return _dates_match(query, "DateCreated", recording.date_created)
