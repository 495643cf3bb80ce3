"""SdkTwilioGateway against the Twilio simulator: all 15 operations of the spec subset, end to end.

The gateway reaches the simulator through the real twilio SDK and `HttpxTwilioHttpClient`; a wrapping
transport checks every request it sends and every response it gets against Twilio's OpenAPI subset
(responses with an error status against Twilio's error body instead, which the spec does not describe).
The simulator's own callbacks go to a tiny ASGI app standing in for confctl.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import stamina
from openapi_core.exceptions import OpenAPIError
from starlette.types import Receive, Scope, Send

from confctl.adapters.twilio_gateway import SdkTwilioGateway
from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.service.gateway import DialRequest, ParticipantUpdate, TwilioError, TwilioUnavailable
from confctl.simulator.app import SimulatorConfig, create_simulator
from tests.twilio_spec import validate_request, validate_response

ACCOUNT = "AC" + "0" * 32
TOKEN = "tok"
ROOM = "room-x"
CALLER = "+15550100"
CUSTOMER = "+15550111"
AGENT = "client:agent ana"  # a label and an address with a space: both must be encoded
SUPERVISOR = "client:sup"


@dataclass
class SpecCheckingTransport(httpx.AsyncBaseTransport):
    """Forwards to `inner`, checking each exchange against the spec; keeps what it saw."""

    inner: httpx.AsyncBaseTransport
    exchanges: list[tuple[str, str, int]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = dict(request.headers)
        validate_request(request.method, str(request.url), headers, body)
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        path = request.url.raw_path.decode().split("?")[0]
        self.exchanges.append((request.method, path, response.status_code))
        if response.status_code < 400:
            response_headers = dict(response.headers)
            validate_response(request.method, str(request.url), response.status_code, response_headers, content)
        else:
            _check_error_body(response.status_code, content)
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)


def _check_error_body(status: int, content: bytes) -> None:
    """Twilio's error body: JSON with an integer `code`, a `message`, `more_info` and the `status`."""
    error = json.loads(content)
    assert isinstance(error["code"], int)
    assert isinstance(error["message"], str)
    assert error.get("status", status) == status


class ConfctlStandIn:
    """What the simulator calls back: the voice URL answers a Dial into ROOM, everything else 204."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[str, dict[str, list[str]]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.callbacks.append((scope["path"], parse_qs(body.decode())))
        if scope["path"] == "/twilio/voice":
            twiml = f"<Response><Dial><Conference>{ROOM}</Conference></Dial></Response>".encode()
            headers = [(b"content-type", b"application/xml")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": twiml})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


@dataclass
class World:
    """The simulator, the gateway pointed at it, and a client for its /simulator control endpoints."""

    sim: Any
    gateway: SdkTwilioGateway
    checked: SpecCheckingTransport
    control: httpx.AsyncClient
    confctl: ConfctlStandIn

    async def inbound_call(self, from_: str = CUSTOMER, to: str = CALLER) -> str:
        """An inbound call that the voice URL dials into ROOM; returns its CallSid once settled."""
        response = await self.control.post("/simulator/calls", json={"from": from_, "to": to})
        response.raise_for_status()
        await self.sim.settle()
        call_sid: str = response.json()["call_sid"]
        return call_sid

    async def room_sid(self) -> str:
        conference = await self.gateway.find_conference(ROOM)
        assert conference is not None
        return conference.sid

    async def dial(self, conference: str, to: str, label: str, **options: Any) -> str:
        """Dial `to` into `conference` and let it answer; returns its CallSid."""
        request = DialRequest(
            from_=CALLER, to=to, label=label, status_callback="http://confctl.test/twilio/call", **options
        )
        created = await self.gateway.create_participant(conference, request)
        await self.sim.settle()
        return created.call_sid


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.fixture
async def world() -> AsyncIterator[World]:
    confctl = ConfctlStandIn()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=confctl)) as callbacks:
        config = SimulatorConfig(
            account_sid=ACCOUNT, auth_token=TOKEN, webhook_base="http://confctl.test", time_scale=0.01
        )
        sim = create_simulator(config, http_client=callbacks)
        checked = SpecCheckingTransport(httpx.ASGITransport(app=sim.app))
        http = HttpxTwilioHttpClient(base_url="http://sim.test", transport=checked)
        gateway = SdkTwilioGateway(ACCOUNT, TOKEN, http_client=http)
        async with (
            http,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim.test") as ctl,
        ):
            try:
                yield World(sim, gateway, checked, ctl, confctl)
                await sim.settle()
            finally:
                await sim.aclose()


def operations(world: World) -> set[str]:
    """The spec operations the gateway has sent so far, as `METHOD /Resource/...` shapes."""
    names = set()
    for method, path, _status in world.checked.exchanges:
        parts = path.split(f"/Accounts/{ACCOUNT}/", 1)[1].removesuffix(".json").split("/")
        shape = "/".join(p if i % 2 == 0 else "*" for i, p in enumerate(parts))
        names.add(f"{method} {shape}")
    return names


async def test_call_operations(world: World) -> None:
    """CreateCall, FetchCall, ListCall and UpdateCall work end to end and answer per the spec."""
    created = await world.gateway.create_call(
        to=CUSTOMER,
        from_=CALLER,
        url="http://confctl.test/twilio/voice",
        status_callback="http://confctl.test/twilio/call",
        status_callback_events=("initiated", "ringing", "answered", "completed"),
        timeout_s=15,
    )
    assert created.sid.startswith("CA")
    assert (created.from_, created.to) == (CALLER, CUSTOMER)
    await world.sim.settle()
    fetched = await world.gateway.fetch_call(created.sid)
    assert fetched.status == "in-progress"
    assert fetched.direction == "outbound-api"
    assert created.sid in {c.sid for c in await world.gateway.list_calls(status="in-progress")}
    updated = await world.gateway.update_call(created.sid, "completed")
    await world.sim.settle()
    assert updated.sid == created.sid
    assert (await world.gateway.fetch_call(created.sid)).status == "completed"
    assert created.sid in {c.sid for c in await world.gateway.list_calls()}
    assert operations(world) == {"POST Calls", "GET Calls", "GET Calls/*", "POST Calls/*"}


async def test_hang_up_ends_ringing_and_answered_calls(world: World) -> None:
    """hang_up_call cancels a call still ringing and completes one that was answered."""
    response = await world.control.put("/simulator/directory/+15550999", json={"behavior": "answer", "after_s": 60})
    response.raise_for_status()
    ringing = await world.gateway.create_call(to="+15550999", from_=CALLER, twiml="<Response><Pause/></Response>")
    assert (await world.gateway.hang_up_call(ringing.sid)).status == "canceled"
    answered = await world.inbound_call()
    assert (await world.gateway.hang_up_call(answered)).status == "completed"


async def test_conference_operations(world: World) -> None:
    """ListConference, FetchConference and UpdateConference find, read and end a conference."""
    await world.inbound_call()
    waiting = await world.gateway.find_conference(ROOM)
    assert waiting is not None
    # Twilio starts a conference with its second participant; until then it is `init`.
    assert (waiting.friendly_name, waiting.status) == (ROOM, "init")
    await world.dial(waiting.sid, AGENT, "agent")
    conference = await world.gateway.find_conference(ROOM)
    assert conference is not None
    assert (conference.friendly_name, conference.status) == (ROOM, "in-progress")
    assert await world.gateway.find_conference("no-such-room") is None
    assert [c.sid for c in await world.gateway.list_conferences(status="in-progress")] == [conference.sid]
    fetched = await world.gateway.fetch_conference(conference.sid)
    assert fetched == conference
    await world.gateway.end_conference(conference.sid)
    await world.sim.settle()
    ended = await world.gateway.fetch_conference(conference.sid)
    assert ended.status == "completed"
    assert ended.reason_conference_ended == "conference-ended-via-api"
    assert {"GET Conferences", "GET Conferences/*", "POST Conferences/*"} <= operations(world)


async def test_participant_operations(world: World) -> None:
    """CreateParticipant, FetchParticipant, ListParticipant, UpdateParticipant and DeleteParticipant."""
    customer = await world.inbound_call()
    room = await world.room_sid()
    agent = await world.dial(room, AGENT, "agent ana 1")
    by_label = await world.gateway.fetch_participant(room, "agent ana 1")
    assert (by_label.call_sid, by_label.label, by_label.status) == (agent, "agent ana 1", "connected")
    assert {p.call_sid for p in await world.gateway.list_participants(room)} == {customer, agent}

    held = await world.gateway.update_participant(room, customer, ParticipantUpdate(hold=True))
    assert held.hold
    muted = await world.gateway.update_participant(room, "agent ana 1", ParticipantUpdate(muted=True))
    assert muted.muted
    supervisor = await world.dial(room, SUPERVISOR, "sup", muted=True)
    coach = ParticipantUpdate(muted=False, coaching=True, call_sid_to_coach=agent)
    coaching = await world.gateway.update_participant(room, "sup", coach)
    assert (coaching.coaching, coaching.call_sid_to_coach) == (True, agent)

    await world.gateway.remove_participant(room, "sup")
    await world.sim.settle()
    assert {p.call_sid for p in await world.gateway.list_participants(room)} == {customer, agent}
    assert supervisor not in {p.call_sid for p in await world.gateway.list_participants(room)}
    assert {
        "POST Conferences/*/Participants",
        "GET Conferences/*/Participants",
        "GET Conferences/*/Participants/*",
        "POST Conferences/*/Participants/*",
        "DELETE Conferences/*/Participants/*",
    } <= operations(world)


async def test_create_participant_by_friendly_name(world: World) -> None:
    """Dialing into a FriendlyName with conference settings starts that conference."""
    await world.dial(
        "support queue",
        AGENT,
        "agent",
        conference_status_callback="http://confctl.test/twilio/conference",
        conference_status_callback_events=("start", "end", "join", "leave"),
        end_conference_on_exit=True,
    )
    conference = await world.gateway.find_conference("support queue")
    assert conference is not None
    participants = await world.gateway.list_participants(conference.sid)
    assert [(p.label, p.end_conference_on_exit) for p in participants] == [("agent", True)]


async def test_twilio_refusals_become_twilio_error(world: World) -> None:
    """A duplicate label (16026 on REST) and an unknown conference (20404) come back as TwilioError codes."""
    await world.inbound_call()
    room = await world.room_sid()
    await world.dial(room, AGENT, "agent")
    with pytest.raises(TwilioError) as duplicate:
        await world.dial(room, SUPERVISOR, "agent")
    assert duplicate.value.code == 16026
    with pytest.raises(TwilioError) as missing:
        await world.gateway.fetch_conference("CF" + "f" * 32)
    assert (missing.value.status, missing.value.code) == (404, 20404)


async def test_recording_operations(world: World) -> None:
    """ListConferenceRecording, FetchConferenceRecording and UpdateConferenceRecording on a recorded call."""
    await world.dial("recorded", AGENT, "agent", conference_record=True)
    conference = await world.gateway.find_conference("recorded")
    assert conference is not None
    assert await world.gateway.list_recordings(conference.sid) == []
    # Recording starts with the conference, i.e. when a second participant joins.
    await world.dial(conference.sid, SUPERVISOR, "sup")
    recordings = await world.gateway.list_recordings(conference.sid)
    assert [r.status for r in recordings] == ["in-progress"]
    recording = recordings[0]
    assert recording.conference_sid == conference.sid
    paused = await world.gateway.update_recording(conference.sid, recording.sid, "paused", "silence")
    assert paused.status == "paused"
    resumed = await world.gateway.update_recording(conference.sid, "Twilio.CURRENT", "in-progress")
    assert (resumed.sid, resumed.status) == (recording.sid, "in-progress")
    await world.gateway.update_recording(conference.sid, recording.sid, "stopped")
    await world.sim.settle()
    stopped = await world.gateway.fetch_recording(conference.sid, recording.sid)
    assert stopped.status in {"stopped", "processing", "completed"}
    assert {
        "GET Conferences/*/Recordings",
        "GET Conferences/*/Recordings/*",
        "POST Conferences/*/Recordings/*",
    } <= operations(world)


async def test_spec_check_is_not_vacuous(world: World) -> None:
    """The checking transport rejects what the spec subset lacks (DeleteCall) or forbids (Status=bogus)."""
    client = httpx.AsyncClient(transport=world.checked, base_url="http://sim.test", auth=(ACCOUNT, TOKEN))
    call = f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{'0' * 32}.json"
    async with client:
        with pytest.raises(OpenAPIError, match="Operation delete not found"):
            await client.delete(call)
        with pytest.raises(OpenAPIError, match="bogus"):
            await client.post(call, data={"Status": "bogus"})


async def test_simulated_outage_retries_reads_but_not_creates(world: World) -> None:
    """With every REST request failing 503, a read is tried 3 times and a create once, both TwilioUnavailable."""
    await world.inbound_call()
    room = await world.room_sid()
    response = await world.control.put("/simulator/faults", json={"rest_error_rate": 1.0, "rest_error_status": 503})
    response.raise_for_status()
    before = len(world.checked.exchanges)
    with pytest.raises(TwilioUnavailable, match="503"):
        await world.gateway.list_participants(room)
    assert [status for _m, _p, status in world.checked.exchanges[before:]] == [503, 503, 503]
    before = len(world.checked.exchanges)
    with pytest.raises(TwilioUnavailable, match="503"):
        await world.dial(room, AGENT, "agent")
    assert [(m, status) for m, _p, status in world.checked.exchanges[before:]] == [("POST", 503)]
    await world.control.put("/simulator/faults", json={"rest_error_rate": 0.0})
    assert len(await world.gateway.list_participants(room)) == 1
