"""Every way into a conference sets the same conference: the voice webhook's TwiML and each CreateParticipant
carry the same status callback and events, recording and wait music (with its method), checked against
Twilio's spec subset; hold music and announcements carry their methods too."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from confctl.adapters.twilio_gateway import SdkTwilioGateway
from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.adapters.twiml import ConferenceTwiml, dial_conference
from confctl.domain import effects as fx
from confctl.entry.settings import Settings
from confctl.service.effects import CallSettings, EffectRunner
from confctl.service.gateway import ParticipantUpdate
from confctl.service.webhook_urls import WebhookUrls
from tests.twilio_spec import spec_dict, validate_request

ACCOUNT = "AC" + "0" * 32
CONF = "CF" + "1" * 32
CALL = "CA" + "2" * 32
PUBLIC = "https://confctl.example.com"
ROOM = "room-CA" + "3" * 32
WAIT = "https://media.example.com/wait.mp3"


class _Clock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def participant_json(**overrides: object) -> dict[str, object]:
    return {"account_sid": ACCOUNT, "call_sid": CALL, "conference_sid": CONF, "label": "agent-1",
            "status": "queued", "muted": False, "hold": False, "coaching": False, "call_sid_to_coach": None,
            "end_conference_on_exit": False, "start_conference_on_enter": True} | overrides


class Capture:
    """A MockTransport handler that keeps every request and answers like Twilio would."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/Participants.json"):
            return httpx.Response(201, json=participant_json())
        if "/Participants/" in request.url.path:
            return httpx.Response(200, json=participant_json())
        return httpx.Response(200, json={"sid": CONF, "friendly_name": ROOM, "status": "in-progress"})

    def gateway(self) -> SdkTwilioGateway:
        http = HttpxTwilioHttpClient(base_url="https://api.twilio.com", transport=httpx.MockTransport(self))
        return SdkTwilioGateway(ACCOUNT, "token", http_client=http)

    def form(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].content.decode())

    def check_against_spec(self, index: int, operation: str) -> dict[str, list[str]]:
        """The request is valid for the spec, and sends no field the operation does not define."""
        request = self.requests[index]
        validate_request(request.method, str(request.url), dict(request.headers), request.content)
        form = self.form(index)
        assert set(form) <= _fields(operation), set(form) - _fields(operation)
        return form


def _fields(operation: str) -> set[str]:
    for path in spec_dict()["paths"].values():
        for op in path.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                schema = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
                return set(schema["properties"])
    raise KeyError(operation)


def runner(gateway: Any, **settings: Any) -> EffectRunner:
    call_settings = CallSettings(public_url=PUBLIC, caller_id="+15550000000", **settings)
    return EffectRunner(conferences=None, gateway=gateway, clock=_Clock(), settings=call_settings)  # type: ignore[arg-type]


def twiml_conference(**spec: Any) -> ET.Element:
    urls = WebhookUrls(PUBLIC)
    xml = dial_conference(ConferenceTwiml(conference_name=ROOM, label="customer",
                                          status_callback=urls.conference_status(),
                                          recording_status_callback=urls.recording_status(ROOM), **spec))
    found = ET.fromstring(xml).find("./Dial/Conference")
    assert found is not None
    return found


async def test_create_participant_sets_the_conference_as_the_twiml_does() -> None:
    """A dialed leg's CreateParticipant carries the TwiML's conference status callback and events (announcement
    included), its recording (record-from-start, the recording callback and events) and its wait music with
    WaitMethod: whichever leg joins first, the conference is the same."""
    capture = Capture()
    dial = fx.Dial(label="agent-1", to="client:alice", role="agent")
    request = runner(capture.gateway(), record=True, wait_url=WAIT).dial_request(ROOM, dial)
    await capture.gateway().create_participant(ROOM, request)
    form = capture.check_against_spec(0, "CreateParticipant")
    conference = twiml_conference(record=True, wait_url=WAIT)

    assert form["ConferenceStatusCallback"] == [conference.get("statusCallback")]
    assert " ".join(form["ConferenceStatusCallbackEvent"]) == conference.get("statusCallbackEvent")
    assert "announcement" in form["ConferenceStatusCallbackEvent"]
    assert form["ConferenceRecord"] == [conference.get("record")] == ["record-from-start"]
    assert form["ConferenceRecordingStatusCallback"] == [conference.get("recordingStatusCallback")]
    assert " ".join(form["ConferenceRecordingStatusCallbackEvent"]) == conference.get("recordingStatusCallbackEvent")
    assert form["WaitUrl"] == [conference.get("waitUrl")] == [WAIT]
    assert form["WaitMethod"] == [conference.get("waitMethod")] == ["GET"]


async def test_without_recording_or_wait_music_nothing_of_them_is_sent() -> None:
    """Not recording and no wait URL: neither way in asks for a recording or sends a WaitMethod (Twilio then
    GETs its own music)."""
    capture = Capture()
    dial = fx.Dial(label="agent-1", to="client:alice", role="agent")
    await capture.gateway().create_participant(ROOM, runner(capture.gateway()).dial_request(ROOM, dial))
    form = capture.check_against_spec(0, "CreateParticipant")
    assert not {"ConferenceRecord", "ConferenceRecordingStatusCallback", "WaitUrl", "WaitMethod"} & set(form)
    conference = twiml_conference()
    assert conference.get("record") is None and conference.get("waitMethod") is None


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_wait_method_follows_the_setting(method: str) -> None:
    """CONFCTL_WAIT_METHOD reaches both the TwiML's waitMethod and CreateParticipant's WaitMethod."""
    capture = Capture()
    dial = fx.Dial(label="agent-1", to="client:alice", role="agent")
    request = runner(capture.gateway(), wait_url=WAIT, wait_method=method).dial_request(ROOM, dial)
    await capture.gateway().create_participant(ROOM, request)
    assert capture.check_against_spec(0, "CreateParticipant")["WaitMethod"] == [method]
    assert twiml_conference(wait_url=WAIT, wait_method=method).get("waitMethod") == method


async def test_hold_music_and_announcements_carry_their_methods() -> None:
    """A hold with a HoldUrl sends HoldMethod; an announcement sends AnnounceUrl and AnnounceMethod, to a
    participant (UpdateParticipant) or to the conference (UpdateConference)."""
    capture = Capture()
    gateway = capture.gateway()
    await gateway.update_participant(CONF, CALL, ParticipantUpdate(hold=True, hold_url=WAIT, hold_method="POST"))
    await gateway.update_participant(CONF, CALL, ParticipantUpdate(hold=False, hold_method="POST"))
    await gateway.update_participant(CONF, CALL, ParticipantUpdate(announce_url=WAIT, announce_method="GET"))
    await gateway.announce_to_conference(CONF, WAIT, "GET")
    assert capture.check_against_spec(0, "UpdateParticipant") == {
        "Hold": ["true"], "HoldUrl": [WAIT], "HoldMethod": ["POST"]}
    assert capture.check_against_spec(1, "UpdateParticipant") == {"Hold": ["false"]}  # no URL, no method
    assert capture.check_against_spec(2, "UpdateParticipant") == {"AnnounceUrl": [WAIT], "AnnounceMethod": ["GET"]}
    assert capture.check_against_spec(3, "UpdateConference") == {"AnnounceUrl": [WAIT], "AnnounceMethod": ["GET"]}


def test_method_settings_default_to_get_and_take_get_or_post() -> None:
    """CONFCTL_WAIT_METHOD and CONFCTL_HOLD_METHOD default to GET, take get/post in any case, refuse the rest."""
    assert (Settings().wait_method, Settings().hold_method) == ("GET", "GET")
    assert Settings(wait_method="post", hold_method=" Post ").model_dump(include={"wait_method", "hold_method"}) == {
        "wait_method": "POST", "hold_method": "POST"}
    with pytest.raises(ValidationError):
        Settings(wait_method="PUT")
