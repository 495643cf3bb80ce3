"""Delivery modes: `callback_concurrency` (N webhooks in flight at once) and `callback_early` (callbacks
before the REST answer that caused them), watched from a receiver on a real socket.

The receiver (uvicorn on 127.0.0.1) stands in for confctl: it answers the voice URL with a `<Dial>` into
the customer's conference, every callback with 204 after `slow_s`, and writes each arrival (`in`) and
answer (`out`) into one timeline; the test writes `answer` there when a REST answer reaches it. Everything
runs on one event loop, so the timeline's order is the order things happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn

from confctl.simulator import Simulator, SimulatorConfig, create_simulator
from tests.simulator.conftest import ACCOUNT, CONFERENCE_EVENTS, TIME_SCALE, TOKEN, api

Timeline = list[tuple[str, str]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def callback_key(path: str, params: dict[str, str]) -> str:
    """One callback's name in the timeline: the same for its retries."""
    if path == "/twilio/conference-status":
        return f"{params['StatusCallbackEvent']}:{params['SequenceNumber']}"
    return f"{params.get('CallStatus')}:{params['CallSid']}"


@dataclass
class Receiver:
    """ASGI stand-in for confctl behind a real socket; see the module docstring."""

    base: str
    fragment: str = ""  # connection overrides on the conference status callback URL
    timeline: Timeline = field(default_factory=list)
    slow_s: float = 0.0  # every callback and every redirected voice request is answered after this long
    stall_next_s: float | None = None  # the next new callback's first attempt is answered after this long
    stalled: str | None = None
    seen: set[str] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0
    voice_in_flight: dict[str, int] = field(default_factory=dict)
    most_voice_in_flight: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        path = scope["path"]
        if path == "/twilio/voice":
            content, kind = self._dial(params["CallSid"]).encode(), b"application/xml"
        elif path == "/twilio/redirect":
            content, kind = await self._redirected(params["CallSid"]), b"application/xml"
        else:
            content, kind = b"", b"text/plain"
            await self._callback(path, params)
        status = 200 if content else 204
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": content})

    def _dial(self, call_sid: str) -> str:
        url = f"{self.base}/twilio/conference-status{self.fragment}".replace("&", "&amp;")
        return (
            f'<Response><Dial><Conference participantLabel="customer" statusCallback="{url}" '
            f'statusCallbackEvent="{CONFERENCE_EVENTS}">room-{call_sid}</Conference></Dial></Response>'
        )

    async def _redirected(self, call_sid: str) -> bytes:
        self.voice_in_flight[call_sid] = self.voice_in_flight.get(call_sid, 0) + 1
        self.most_voice_in_flight = max(self.most_voice_in_flight, self.voice_in_flight[call_sid])
        await asyncio.sleep(self.slow_s)
        self.voice_in_flight[call_sid] -= 1
        return b'<Response><Pause length="60"/></Response>'

    async def _callback(self, path: str, params: dict[str, str]) -> None:
        key = callback_key(path, params)
        self.timeline.append(("in", key))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        delay = self.slow_s
        if key not in self.seen and self.stall_next_s is not None:
            delay, self.stall_next_s, self.stalled = self.stall_next_s, None, key
        self.seen.add(key)
        try:
            await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
            self.timeline.append(("out", key))

    def arrivals(self) -> list[str]:
        return [key for what, key in self.timeline if what == "in"]

    def position(self, what: str, key: str, nth: int = 0) -> int:
        """Where in the timeline the `nth` (from 0) entry (`what`, `key`) is."""
        return [i for i, entry in enumerate(self.timeline) if entry == (what, key)][nth]


@dataclass
class Rig:
    simulator: Simulator
    receiver: Receiver
    client: httpx.AsyncClient  # to the simulator, through ASGI

    async def faults(self, **settings: object) -> dict[str, Any]:
        response = await self.client.put("/simulator/faults", json=settings)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def rest(self, method: str, path: str, **form: object) -> httpx.Response:
        """A REST request; its answer's arrival is written into the timeline."""
        response = await self.client.request(method, api(path), data=form or None)
        self.receiver.timeline.append(("answer", path))
        assert response.status_code < 300, response.text
        return response

    async def delivered(self) -> None:
        """Wait until nothing is queued or in flight (timers may still be pending)."""
        for _ in range(500):
            await asyncio.sleep(0.01)
            if self.simulator.runtime.delivery.idle():
                return
        raise TimeoutError("callbacks still on their way after 5 s")

    async def customer(self) -> tuple[str, str]:
        """An inbound customer in their conference; returns (call SID, conference SID), all settled."""
        response = await self.client.post("/simulator/calls", json={"from": "+15550001", "to": "+15559999"})
        assert response.status_code == 200
        call_sid: str = response.json()["call_sid"]
        await self.simulator.settle()
        conference: str = (await self.client.get(f"/simulator/calls/{call_sid}")).json()["conference_sid"]
        assert conference, "the voice answer put the customer in a conference"
        return call_sid, conference

    async def full_conference(self, agents: int = 4) -> str:
        """The customer plus `agents` dialed agents, all joined; returns the conference SID."""
        _, conference = await self.customer()
        for n in range(agents):
            await self.rest("POST", f"/Conferences/{conference}/Participants.json",
                            From="+15550000", To=f"client:agent{n}", Label=f"agent{n}")
        await self.simulator.settle()
        return conference

    async def end(self, conference: str) -> list[str]:
        """End the conference (one request queues every leave and the end); the burst's callbacks, in order."""
        before = len(self.receiver.arrivals())
        await self.rest("POST", f"/Conferences/{conference}.json", Status="completed")
        await self.simulator.settle()
        burst = list(dict.fromkeys(self.receiver.arrivals()[before:]))
        assert len(burst) == 6, burst  # five leaves and the end
        return burst


@pytest.fixture
async def rig_for() -> AsyncIterator[Callable[..., Rig]]:
    """Builds simulators calling a Receiver served by uvicorn on a free port."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver(base)
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the receiver did not start"
        await asyncio.sleep(0.01)
    made: list[tuple[Simulator, httpx.AsyncClient, httpx.AsyncClient]] = []

    def build(fragment: str = "") -> Rig:
        receiver.fragment = fragment
        hooks = httpx.AsyncClient()  # real HTTP to the receiver
        simulator = create_simulator(SimulatorConfig(ACCOUNT, TOKEN, base, time_scale=TIME_SCALE), hooks)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim.test",
                                   auth=(ACCOUNT, TOKEN))
        made.append((simulator, hooks, client))
        return Rig(simulator, receiver, client)

    try:
        yield build
    finally:
        for simulator, hooks, client in made:
            await simulator.aclose()
            await client.aclose()
            await hooks.aclose()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 5)


# --- defaults -------------------------------------------------------------------------------------------

async def test_defaults_are_one_sender_in_order_after_the_rest_answer(rig_for: Callable[..., Rig]) -> None:
    """By default one callback is in flight at a time, in event order, and the REST answer comes first."""
    rig = rig_for()
    faults = (await rig.client.get("/simulator/faults")).json()
    assert (faults["callback_concurrency"], faults["callback_early"]) == (1, False)
    call_sid, conference = await rig.customer()
    rig.receiver.slow_s = 0.02
    await rig.rest("POST", f"/Conferences/{conference}/Participants/{call_sid}.json", Hold="true")
    await rig.simulator.settle()
    hold = next(key for key in rig.receiver.arrivals() if key.startswith("participant-hold:"))
    assert rig.receiver.position("answer", f"/Conferences/{conference}/Participants/{call_sid}.json") \
        < rig.receiver.position("in", hold)
    burst = await rig.end(await rig.full_conference())
    numbers = [int(key.partition(":")[2]) for key in burst]
    assert numbers == sorted(numbers)
    assert rig.receiver.most_in_flight == 1


async def test_concurrency_is_validated(rig_for: Callable[..., Rig]) -> None:
    """callback_concurrency below 1 is refused; the settings read back as set."""
    rig = rig_for()
    assert (await rig.client.put("/simulator/faults", json={"callback_concurrency": 0})).status_code == 422
    faults = await rig.faults(callback_concurrency=4, callback_early=True)
    assert (faults["callback_concurrency"], faults["callback_early"]) == (4, True)
    assert (await rig.client.get("/simulator/faults")).json()["callback_concurrency"] == 4


# --- callback_concurrency -------------------------------------------------------------------------------

async def test_concurrency_puts_n_callbacks_in_flight_against_a_slow_receiver(rig_for: Callable[..., Rig]) -> None:
    """callback_concurrency=3: of six callbacks queued at once for a slow receiver, three are in flight at once."""
    rig = rig_for()
    await rig.faults(callback_concurrency=3)
    conference = await rig.full_conference()
    rig.receiver.slow_s = 0.2
    rig.receiver.most_in_flight = 0
    await rig.end(conference)
    assert rig.receiver.most_in_flight == 3


async def test_a_slow_callback_does_not_hold_back_the_others(rig_for: Callable[..., Rig]) -> None:
    """callback_concurrency=4: while the first callback of a burst takes 0.5 s, the other five are delivered."""
    rig = rig_for()
    await rig.faults(callback_concurrency=4)
    conference = await rig.full_conference()
    rig.receiver.stall_next_s = 0.5
    burst = await rig.end(conference)
    stalled = rig.receiver.stalled
    assert stalled == burst[0]
    for key in burst[1:]:
        assert rig.receiver.position("out", key) < rig.receiver.position("out", stalled)


async def test_a_retried_callback_does_not_hold_back_the_others(rig_for: Callable[..., Rig]) -> None:
    """callback_concurrency=4 and `#rt=500&rp=rt`: while the first callback's first attempt times out and is
    retried, the other callbacks of the burst are delivered."""
    rig = rig_for("#rt=500&rp=rt")
    await rig.faults(callback_concurrency=4)
    conference = await rig.full_conference()
    rig.receiver.stall_next_s = 1.0
    burst = await rig.end(conference)
    stalled = rig.receiver.stalled
    assert stalled is not None
    retry = rig.receiver.position("in", stalled, nth=1)
    for key in burst:
        if key != stalled:
            assert rig.receiver.position("out", key) < retry
    conference_log = [e for e in rig.simulator.runtime.delivery.log if e["kind"] == "conference-status"]
    tries = [e for e in conference_log
             if callback_key("/twilio/conference-status", cast(dict[str, str], e["params"])) == stalled]
    assert [(e["attempt"], e["failure"], e["status"]) for e in tries] == [(1, "rt", None), (2, None, 204)]


async def test_a_calls_voice_requests_stay_one_at_a_time(rig_for: Callable[..., Rig]) -> None:
    """callback_concurrency=4: three redirects of one call in a row fetch TwiML one after another, never two
    at once, and every fetch is answered."""
    rig = rig_for()
    await rig.faults(callback_concurrency=4)
    call_sid, _ = await rig.customer()
    rig.receiver.slow_s = 0.05
    for _ in range(3):
        await rig.rest("POST", f"/Calls/{call_sid}.json", Url=f"{rig.receiver.base}/twilio/redirect")
    await rig.simulator.settle()
    voice = [e for e in rig.simulator.runtime.delivery.log if e["kind"] == "voice"]
    assert len(voice) == 4 and all(e["status"] == 200 for e in voice)  # the first call plus three redirects
    assert rig.receiver.most_voice_in_flight == 1


# --- callback_early -------------------------------------------------------------------------------------

async def test_early_hold_callback_reaches_the_receiver_before_the_update_answer(
    rig_for: Callable[..., Rig],
) -> None:
    """callback_early: the `hold` callback caused by UpdateParticipant is answered by the receiver before the
    REST answer reaches the client."""
    rig = rig_for()
    call_sid, conference = await rig.customer()
    await rig.faults(callback_early=True)
    path = f"/Conferences/{conference}/Participants/{call_sid}.json"
    await rig.rest("POST", path, Hold="true")
    holds = [key for key in rig.receiver.arrivals() if key.startswith("participant-hold:")]
    assert holds, "the hold callback had not reached the receiver when the REST answer came"
    assert rig.receiver.position("out", holds[0]) < rig.receiver.position("answer", path)
    await rig.simulator.settle()


async def test_early_initiated_callback_reaches_the_receiver_before_the_create_answer(
    rig_for: Callable[..., Rig],
) -> None:
    """callback_early: a dialed leg's `initiated` and `ringing` callbacks are answered by the receiver before the
    CreateParticipant answer reaches the client (by default they come after it)."""
    rig = rig_for()
    _, conference = await rig.customer()
    path = f"/Conferences/{conference}/Participants.json"
    dial = {"From": "+15550000", "StatusCallback": f"{rig.receiver.base}/twilio/call-status",
            "StatusCallbackEvent": ["initiated", "ringing"]}
    await rig.client.put("/simulator/directory/client:slow", json={"behavior": "answer", "after_s": 1000})
    await rig.client.put("/simulator/directory/client:slower", json={"behavior": "answer", "after_s": 1000})

    late = (await rig.rest("POST", path, To="client:slow", Label="late", **dial)).json()["call_sid"]
    await rig.delivered()  # the legs keep ringing: wait for the callbacks only
    assert rig.receiver.position("answer", path, nth=0) < rig.receiver.position("in", f"initiated:{late}")

    await rig.faults(callback_early=True)
    early = (await rig.rest("POST", path, To="client:slower", Label="early", **dial)).json()["call_sid"]
    answered = rig.receiver.position("answer", path, nth=1)
    assert rig.receiver.position("out", f"initiated:{early}") < answered
    assert rig.receiver.position("out", f"ringing:{early}") < answered
