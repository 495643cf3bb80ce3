"""Fixtures for the simulator tests: a simulator driven through ASGI, a recording stand-in for confctl.

No network: the test client reaches the simulator through `httpx.ASGITransport`, and the simulator's
voice requests and callbacks reach `Recorder`, which keeps every request and checks its signature with
twilio's own `RequestValidator`. Every REST exchange is checked against Twilio's spec subset.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from confctl.simulator import Simulator, SimulatorConfig, create_simulator
from tests.twilio_spec import validate_request, validate_response

ACCOUNT = "AC" + "1" * 32
TOKEN = "sim-secret-token"
HOOKS = "http://confctl.test"
CONFERENCE_EVENTS = "start end join leave mute hold modify"
TIME_SCALE = 0.01


def api(path: str) -> str:
    """A REST path under the simulated account."""
    return f"/2010-04-01/Accounts/{ACCOUNT}{path}"


def dial_conference_twiml(params: dict[str, str]) -> str:
    """What confctl's voice URL answers: the caller into `room-{CallSid}` with all events subscribed."""
    return (
        '<Response><Dial><Conference participantLabel="customer" '
        f'statusCallback="{HOOKS}/twilio/conference-status" statusCallbackEvent="{CONFERENCE_EVENTS}">'
        f"room-{params['CallSid']}</Conference></Dial></Response>"
    )


@dataclass
class Hook:
    """One request the simulator sent to the stand-in."""

    method: str
    url: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool


@dataclass
class Recorder:
    """ASGI stand-in for confctl: answers the voice URL with `voice(params)`, a path in `media` with its
    (status, content type, body), any other `*.mp3` with audio, and 204 to everything else."""

    voice: Callable[[dict[str, str]], str] = dial_conference_twiml
    hooks: list[Hook] = field(default_factory=list)
    media: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        host = headers["host"]
        query = scope["query_string"].decode()
        url = f"{scope['scheme']}://{host}{scope['path']}" + (f"?{query}" if query else "")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        signed = form if scope["method"] == "POST" else {}
        valid = RequestValidator(TOKEN).validate(url, signed, headers.get("x-twilio-signature", ""))
        params = form if scope["method"] == "POST" else dict(parse_qsl(query))
        self.hooks.append(Hook(scope["method"], url, scope["path"], params, headers, valid))
        if scope["path"] == "/twilio/voice":
            status, content, kind = 200, self.voice(params).encode(), b"application/xml"
        elif scope["path"] in self.media:
            status, media_type, text = self.media[scope["path"]]
            content, kind = text.encode(), media_type.encode()
        elif scope["path"].endswith(".mp3"):
            status, content, kind = 200, b"ID3", b"audio/mpeg"
        else:
            status, content, kind = 204, b"", b"text/plain"
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": content})

    def at(self, path: str) -> list[dict[str, str]]:
        return [hook.params for hook in self.hooks if hook.path == path]

    def conference_events(self, conference_sid: str | None = None) -> list[dict[str, str]]:
        return [
            p
            for p in self.at("/twilio/conference-status")
            if conference_sid is None or p["ConferenceSid"] == conference_sid
        ]

    def event_names(self, conference_sid: str | None = None) -> list[str]:
        return [p["StatusCallbackEvent"] for p in self.conference_events(conference_sid)]

    def call_events(self, call_sid: str) -> list[dict[str, str]]:
        return [p for p in self.at("/twilio/call-status") if p["CallSid"] == call_sid]


class SpecChecking(httpx.AsyncBaseTransport):
    """Checks every Twilio REST exchange against the spec (errors against Twilio's error body)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if request.url.path.startswith("/2010-04-01/"):
            url = str(request.url)
            if response.status_code < 400:
                validate_request(request.method, url, dict(request.headers), body)
                validate_response(request.method, url, response.status_code, dict(response.headers), content)
                if content:
                    assert response.headers["content-type"].startswith("application/json")
            else:
                error = json.loads(content)
                assert set(error) == {"code", "message", "more_info", "status"}
                assert error["status"] == response.status_code
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def sim(recorder: Recorder) -> AsyncIterator[Simulator]:
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=recorder))
    simulator = create_simulator(SimulatorConfig(ACCOUNT, TOKEN, HOOKS, time_scale=TIME_SCALE), hooks)
    yield simulator
    await simulator.aclose()
    await hooks.aclose()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = SpecChecking(httpx.ASGITransport(app=sim.app))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test", auth=(ACCOUNT, TOKEN)) as c:
        yield c


async def inbound(client: httpx.AsyncClient, sim: Simulator, caller: str = "+15550001") -> tuple[str, str]:
    """A customer calls in and is put where the voice TwiML says; returns (call SID, conference SID)."""
    response = await client.post("/simulator/calls", json={"from": caller, "to": "+15559999"})
    assert response.status_code == 200
    call_sid = response.json()["call_sid"]
    await sim.settle()
    call = (await client.get(f"/simulator/calls/{call_sid}")).json()
    return call_sid, call["conference_sid"]


async def dial(
    client: httpx.AsyncClient, conference: str, to: str, label: str | None = None, **form: str
) -> httpx.Response:
    """CreateParticipant with the given extra form fields."""
    data = {"From": "+15550000", "To": to, **form}
    if label is not None:
        data["Label"] = label
    return await client.post(api(f"/Conferences/{conference}/Participants.json"), data=data)


async def truth(client: httpx.AsyncClient, conference: str) -> dict[str, Any]:
    response = await client.get(f"/simulator/conferences/{conference}")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def hears(client: httpx.AsyncClient, conference: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.get(f"/simulator/conferences/{conference}/audibility")).json()
    return result
