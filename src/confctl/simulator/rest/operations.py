"""The 15 operations of the spec subset, each turning a parsed request into (status, JSON body)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from confctl.simulator.model import media
from confctl.simulator.model.errors import bad_request
from confctl.simulator.model.participants import ParticipantChanges
from confctl.simulator.model.records import (
    MAX_PARTICIPANTS,
    ConferenceSettings,
    FetchPlan,
    ParticipantOptions,
    TwimlPlan,
)
from confctl.simulator.model.world import CallRequest, ParticipantRequest, World
from confctl.simulator.rest import filters
from confctl.simulator.rest.forms import Form
from confctl.simulator.rest.serializers import (
    Json,
    account_path,
    call_json,
    conference_json,
    page_json,
    participant_json,
    recording_json,
)

T = TypeVar("T")
Result = tuple[int, Json | None]

_COMPLETED = frozenset({"completed"})
_MAX_TWIML_CHARS = 4000
_MAX_TIMEOUT_S = 600
_START_END = frozenset({"start", "end"})


@dataclass(frozen=True, slots=True)
class Request:
    """One REST request: decoded path parameters, form body and query string."""

    world: World
    account_sid: str
    path: dict[str, str]
    form: Form
    query: Form


def _page(request: Request, key: str, items: Sequence[T], serialize: Callable[[T], Json], path: str) -> Result:
    page_size = min(max(request.query.int("PageSize") or 50, 1), 1000)
    page = max(request.query.int("Page") or 0, 0)
    kept = [(k, v) for k, v in request.query.pairs if k not in ("PageSize", "Page", "PageToken")]
    return 200, page_json(key, items, serialize, path, kept, page_size, page)


# --- Calls -------------------------------------------------------------------------------------------


def _plan(form: Form) -> FetchPlan | TwimlPlan | None:
    """UpdateCall's new TwiML, if any (Twiml and Url are "mutually exclusive" there; Twiml is taken)."""
    if form.get("Twiml"):
        return TwimlPlan(form.require("Twiml", 21205))
    if form.get("Url"):
        return FetchPlan(form.require("Url", 21205), (form.get("Method") or "POST").upper())
    return None


def _create_call_plan(form: Form) -> FetchPlan | TwimlPlan:
    """CreateCall's Twiml: "If both `twiml` and `url` are provided then `twiml` parameter will be ignored.
    Max 4000 characters." (error 32018). Whether an ignored Twiml is still measured is not said: it is."""
    twiml = form.get("Twiml")
    if twiml and len(twiml) > _MAX_TWIML_CHARS:
        raise bad_request(32018, f"Twiml size exceeded maximum allowed value of {_MAX_TWIML_CHARS} characters")
    if form.get("Url"):
        return FetchPlan(form.require("Url", 21205), (form.get("Method") or "POST").upper())
    if twiml:
        return TwimlPlan(twiml)
    raise bad_request(21205, "Either Url or Twiml is required (ApplicationSid is not simulated).")


def _timeout_s(form: Form, lowest: int) -> float:
    """Timeout: default 60, at most 600; CreateParticipant's "between 5 and 600, inclusive", CreateCall's
    "any positive, whole integer" (error 21208). Whether Twilio clamps a value out of range instead is not
    said: it is refused."""
    raw = form.get("Timeout")
    if raw is None or raw == "":
        return 60.0
    value = int(raw) if raw.strip().isdigit() else None  # a sign or a fraction is no "whole integer" here
    if value is None or not lowest <= value <= _MAX_TIMEOUT_S:
        raise bad_request(21208, f"Invalid Timeout {raw!r}: use a whole number from {lowest} to {_MAX_TIMEOUT_S}")
    return float(value)


def create_call(request: Request) -> Result:
    form = request.form
    to = form.require("To", 21201)
    from_ = form.require("From", 21213)
    plan = _create_call_plan(form)
    call = request.world.create_call(
        CallRequest(
            to=to,
            from_=from_,
            plan=plan,
            callback=form.callback("StatusCallback", _COMPLETED),
            timeout_s=_timeout_s(form, 1),
        )
    )
    return 201, call_json(call)


def list_calls(request: Request) -> Result:
    calls = [c for c in request.world.calls() if filters.call_matches(c, request.query)]
    return _page(request, "calls", calls, call_json, f"{account_path(request.account_sid)}/Calls.json")


def fetch_call(request: Request) -> Result:
    return 200, call_json(request.world.call(request.path["Sid"]))


def update_call(request: Request) -> Result:
    plan = _plan(request.form)
    call = request.world.update_call(request.path["Sid"], request.form.get("Status"), plan)
    return 200, call_json(call)


# --- Conferences -------------------------------------------------------------------------------------


def list_conferences(request: Request) -> Result:
    found = [c for c in request.world.conferences() if filters.conference_matches(c, request.query)]
    path = f"{account_path(request.account_sid)}/Conferences.json"
    return _page(request, "conferences", found, conference_json, path)


def fetch_conference(request: Request) -> Result:
    return 200, conference_json(request.world.conference_by_sid(request.path["Sid"]))


def update_conference(request: Request) -> Result:
    form = request.form
    if form.get("AnnounceUrl"):  # played to the whole room (before an end in the same request takes it)
        request.world.announce_to_conference(request.path["Sid"], form.require("AnnounceUrl", 20001),
                                             _method(form, "AnnounceMethod", "POST"))
    conference = request.world.end_conference(request.path["Sid"], form.get("Status"))
    return 200, conference_json(conference)


def _method(form: Form, name: str, default: str) -> str:
    """A `*Method` field: GET or POST (Twilio's default when absent); anything else is refused."""
    method = media.method_of(form.get(name), default)
    if method is None:
        raise bad_request(20001, f"Invalid {name} {form.get(name)!r}: use GET or POST")
    return method


# --- Participants ------------------------------------------------------------------------------------


def create_participant(request: Request) -> Result:
    form = request.form
    from_ = form.require("From", 21213)
    to = form.require("To", 21201)
    coach = form.get("CallSidToCoach") or None
    coaching = form.bool("Coaching")
    record = form.get("ConferenceRecord") or "false"
    options = ParticipantOptions(
        label=form.get("Label") or None,
        muted=bool(form.bool("Muted")),
        # Twilio: Coaching defaults to false unless CallSidToCoach is given.
        coaching=coaching if coaching is not None else coach is not None,
        call_sid_to_coach=coach,
        start_conference_on_enter=form.bool("StartConferenceOnEnter") is not False,
        end_conference_on_exit=bool(form.bool("EndConferenceOnExit")),
        beep=form.get("Beep") or "true",
        wait_url=form.get("WaitUrl") or None,
        wait_method=_method(form, "WaitMethod", "POST"),
    )
    max_participants = form.int("MaxParticipants")
    if max_participants is not None and not 2 <= max_participants <= MAX_PARTICIPANTS:
        # "Can be a positive integer from `2` to `250`"; no error code is documented for other values.
        raise bad_request(20001, f"Invalid MaxParticipants {max_participants}: use 2 to {MAX_PARTICIPANTS}")
    settings = ConferenceSettings(
        status_callback=form.callback("ConferenceStatusCallback", _START_END),
        record_from_start=record in ("true", "record-from-start"),
        recording_callback=form.callback("ConferenceRecordingStatusCallback", _COMPLETED),
        max_participants=max_participants or MAX_PARTICIPANTS,
    )
    participant = request.world.create_participant(
        request.path["ConferenceSid"],
        ParticipantRequest(
            to=to,
            from_=from_,
            options=options,
            settings=settings,
            callback=form.callback("StatusCallback", _COMPLETED),
            timeout_s=_timeout_s(form, 5),
        ),
    )
    return 201, participant_json(participant, request.account_sid)


def list_participants(request: Request) -> Result:
    conference = request.world.conference_by_sid(request.path["ConferenceSid"])
    found = [p for p in conference.participants.values() if filters.participant_matches(p, request.query)]
    path = f"{account_path(request.account_sid)}/Conferences/{conference.sid}/Participants.json"
    return _page(request, "participants", found, lambda p: participant_json(p, request.account_sid), path)


def fetch_participant(request: Request) -> Result:
    participant = request.world.participant(request.path["ConferenceSid"], request.path["CallSid"])
    return 200, participant_json(participant, request.account_sid)


def update_participant(request: Request) -> Result:
    form = request.form
    coach = form.get("CallSidToCoach") or None
    coaching = form.bool("Coaching")
    changes = ParticipantChanges(
        muted=form.bool("Muted"),
        hold=form.bool("Hold"),
        hold_url=form.get("HoldUrl") or None,
        wait_url=form.get("WaitUrl") or None,
        hold_method=_method(form, "HoldMethod", "GET") if form.get("HoldMethod") else None,
        wait_method=_method(form, "WaitMethod", "POST") if form.get("WaitMethod") else None,
        announce_url=form.get("AnnounceUrl") or None,
        announce_method=_method(form, "AnnounceMethod", "POST"),
        beep_on_exit=form.bool("BeepOnExit"),
        end_conference_on_exit=form.bool("EndConferenceOnExit"),
        coaching=coaching if coaching is not None or coach is None else True,
        call_sid_to_coach=coach,
    )
    participant = request.world.update_participant(request.path["ConferenceSid"], request.path["CallSid"], changes)
    return 200, participant_json(participant, request.account_sid)


def delete_participant(request: Request) -> Result:
    request.world.delete_participant(request.path["ConferenceSid"], request.path["CallSid"])
    return 204, None


# --- Conference recordings ---------------------------------------------------------------------------


def list_recordings(request: Request) -> Result:
    conference_sid = request.path["ConferenceSid"]
    found = [r for r in request.world.recordings(conference_sid) if filters.recording_matches(r, request.query)]
    path = f"{account_path(request.account_sid)}/Conferences/{conference_sid}/Recordings.json"
    return _page(request, "recordings", found, recording_json, path)


def fetch_recording(request: Request) -> Result:
    return 200, recording_json(request.world.recording(request.path["ConferenceSid"], request.path["Sid"]))


def update_recording(request: Request) -> Result:
    status = request.form.require("Status", 20001)
    recording = request.world.update_recording(
        request.path["ConferenceSid"], request.path["Sid"], status, request.form.get("PauseBehavior")
    )
    return 200, recording_json(recording)
