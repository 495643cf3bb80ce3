"""Resources as Twilio's JSON: exactly the snake_case fields of the spec's schemas, null where unknown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlencode

from confctl.simulator.model.calls import duration_s
from confctl.simulator.model.clock import rfc2822
from confctl.simulator.model.records import Call, Conference, Participant, Recording
from confctl.simulator.model.state import API_VERSION

T = TypeVar("T")
Json = dict[str, object]

_CALL_SUBRESOURCES = (
    ("notifications", "Notifications"),
    ("recordings", "Recordings"),
    ("payments", "Payments"),
    ("events", "Events"),
    ("siprec", "Siprec"),
    ("streams", "Streams"),
    ("transcriptions", "Transcriptions"),
    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
    ("user_defined_messages", "UserDefinedMessages"),
)


def account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def _date(moment: datetime | None) -> str | None:
    return rfc2822(moment) if moment is not None else None


def call_json(call: Call) -> Json:
    base = f"{account_path(call.account_sid)}/Calls/{call.sid}"
    return {
        "sid": call.sid,
        "date_created": _date(call.date_created),
        "date_updated": _date(call.date_updated),
        "parent_call_sid": call.parent_call_sid,
        "account_sid": call.account_sid,
        "to": call.to,
        "to_formatted": call.to,
        "from": call.from_,
        "from_formatted": call.from_,
        "phone_number_sid": None,
        # `initiated` exists only in callbacks; the resource stays `queued` until it rings.
        "status": "queued" if call.status == "initiated" else call.status,
        "start_time": _date(call.start_time),
        "end_time": _date(call.end_time),
        "duration": str(duration_s(call)) if call.ended else None,
        "price": None,
        "price_unit": "USD",
        "direction": call.direction,
        "answered_by": None,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{base}.json",
        "subresource_uris": {key: f"{base}/{name}.json" for key, name in _CALL_SUBRESOURCES},
    }


def conference_json(conference: Conference) -> Json:
    base = f"{account_path(conference.account_sid)}/Conferences/{conference.sid}"
    return {
        "account_sid": conference.account_sid,
        "date_created": _date(conference.date_created),
        "date_updated": _date(conference.date_updated),
        "api_version": API_VERSION,
        "friendly_name": conference.friendly_name,
        "region": "us1",
        "sid": conference.sid,
        "status": conference.status,
        "uri": f"{base}.json",
        "subresource_uris": {
            "participants": f"{base}/Participants.json",
            "recordings": f"{base}/Recordings.json",
        },
        "reason_conference_ended": conference.reason_conference_ended,
        "call_sid_ending_conference": conference.call_sid_ending_conference,
    }


def participant_json(participant: Participant, account_sid: str) -> Json:
    base = f"{account_path(account_sid)}/Conferences/{participant.conference_sid}"
    return {
        "account_sid": account_sid,
        "call_sid": participant.call_sid,
        "label": participant.label,
        "call_sid_to_coach": participant.call_sid_to_coach,
        "coaching": participant.coaching,
        "conference_sid": participant.conference_sid,
        "date_created": _date(participant.date_created),
        "date_updated": _date(participant.date_updated),
        "end_conference_on_exit": participant.end_conference_on_exit,
        "muted": participant.muted,
        "hold": participant.hold,
        "start_conference_on_enter": participant.start_conference_on_enter,
        "status": participant.status,
        "queue_time": "0",
        "uri": f"{base}/Participants/{participant.call_sid}.json",
    }


def recording_json(recording: Recording) -> Json:
    base = f"{account_path(recording.account_sid)}/Conferences/{recording.conference_sid}"
    return {
        "account_sid": recording.account_sid,
        "api_version": API_VERSION,
        "call_sid": None,
        "conference_sid": recording.conference_sid,
        "date_created": _date(recording.date_created),
        "date_updated": _date(recording.date_updated),
        "start_time": _date(recording.start_time),
        "duration": str(recording.duration_s) if recording.duration_s is not None else None,
        "sid": recording.sid,
        "price": None,
        "price_unit": "USD",
        "status": recording.status,
        "channels": 1,
        "source": recording.source,
        "error_code": None,
        "encryption_details": None,
        "uri": f"{base}/Recordings/{recording.sid}.json",
    }


def page_json(
    key: str,
    items: Sequence[T],
    serialize: Callable[[T], Json],
    path: str,
    filters: list[tuple[str, str]],
    page_size: int,
    page: int,
) -> Json:
    """One page of a list, with Twilio's paging fields (page numbers; PageToken is informational)."""
    start = page * page_size
    chunk = items[start : start + page_size]

    def uri(number: int) -> str:
        params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if number > 0:
            params.append(("PageToken", f"PA{number * page_size}"))
        return f"{path}?{urlencode(params)}"

    has_next = start + page_size < len(items)
    return {
        key: [serialize(item) for item in chunk],
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if has_next else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + max(len(chunk) - 1, 0),
        "uri": uri(page),
    }
