"""Wait and hold music fetched as configured, a dialed agent who joins before the customer, and announcements,
end to end: confctl, the simulator and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.e2e.support import Stack, build_stack
from tests.e2e.test_hold_mute_supervision import live_call
from tests.support.sse import live_server, open_stream

MEDIA = "https://media.example.com"
AUDIO = {"/wait.mp3", "/hold.mp3", "/recorded.mp3", "/joining.mp3"}


class MediaHost:
    """Serves the audio files above (whatever the host: every webhook of the simulator comes here) and hands
    everything else to confctl; `before_voice_answer` runs after confctl has answered the voice webhook and
    before that answer reaches the simulator."""

    def __init__(self, confctl: ASGIApp) -> None:
        self.confctl = confctl
        self.before_voice_answer: Callable[[str], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in AUDIO:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"audio/mpeg")]})
            await send({"type": "http.response.body", "body": b"ID3"})
            return
        hook = self.before_voice_answer
        if hook is None or scope.get("path") != "/twilio/voice":
            await self.confctl(scope, receive, send)
            return
        body = b""
        held: list[Message] = []

        async def tee() -> Message:
            nonlocal body
            message = await receive()
            body += message.get("body", b"")
            return message

        async def hold(message: Message) -> None:
            held.append(message)

        await self.confctl(scope, tee, hold)
        await hook(parse_qs(body.decode())["CallSid"][0])
        for message in held:
            await send(message)


@asynccontextmanager
async def media_stack(engine: AsyncEngine, **settings: Any) -> AsyncIterator[tuple[Stack, MediaHost]]:
    async with build_stack(engine, **settings) as stack:
        host = MediaHost(stack.app)
        stack.confctl.app = host
        yield stack, host


def sent(stack: Stack, kind: str) -> list[dict[str, object]]:
    """The simulator's delivery log entries of one kind (`wait`, `hold`, `announce`, `voice`, ...)."""
    return [entry for entry in stack.simulator.runtime.delivery.log if entry["kind"] == kind]


async def test_wait_music_is_fetched_with_get_by_default(engine: AsyncEngine) -> None:
    """With CONFCTL_WAIT_URL set and CONFCTL_WAIT_METHOD at its default, Twilio GETs the wait music while the
    customer waits, and the customer stays in the conference."""
    async with media_stack(engine, wait_url=f"{MEDIA}/wait.mp3") as (stack, _):
        _, room = await stack.inbound_call()
        (fetch,) = sent(stack, "wait")
        assert (fetch["method"], fetch["status"]) == ("GET", 200)
        assert str(fetch["url"]).startswith(f"{MEDIA}/wait.mp3?")
        customer = (await stack.conference(room))["participants"][0]
        assert (customer["label"], customer["status"]) == ("customer", "joined")


async def test_without_a_wait_url_nothing_is_fetched(stack: Stack) -> None:
    """The default settings (no wait URL: Twilio's own music) fetch nothing and cannot fail the join."""
    _, room = await stack.inbound_call()
    assert sent(stack, "wait") == []
    assert (await stack.conference(room))["participants"][0]["status"] == "joined"


async def test_hold_music_is_fetched_with_the_hold_method(engine: AsyncEngine) -> None:
    """A hold sends HoldUrl with HoldMethod (CONFCTL_HOLD_METHOD, GET by default); Twilio GETs the music."""
    async with media_stack(engine, hold_music_url=f"{MEDIA}/hold.mp3") as (stack, _):
        room, _ = await live_call(stack)
        response = await stack.api.patch(f"/v1/conferences/{room}/participants/customer", json={"hold": True})
        assert response.status_code == 200, response.text
        await stack.settle()
        update = [r for r in await stack.rest_requests() if r["operation"] == "UpdateParticipant"][-1]
        assert (update["form"]["HoldUrl"], update["form"]["HoldMethod"]) == ([f"{MEDIA}/hold.mp3"], ["GET"])
        assert [(e["method"], e["status"]) for e in sent(stack, "hold")] == [("GET", 200)]


async def test_an_agent_who_joins_before_the_customer_still_records(engine: AsyncEngine) -> None:
    """The dialed agent connects before the customer's TwiML is run, so the agent's CreateParticipant sets the
    conference: it still records from the start and its callbacks still reach confctl."""
    async with media_stack(engine, record=True) as (stack, host):

        async def agent_first(call_sid: str) -> None:
            room = f"room-{call_sid}"
            response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                            json={"to": "client:alice", "role": "agent", "label": "alice"})
            assert response.status_code == 202, response.text
            for _ in range(1000):
                conference = stack.simulator.world.state.live_conference_named(room)
                if conference and any(p.label == "alice" and p.connected for p in conference.participants.values()):
                    return
                await asyncio.sleep(0.005)
            raise AssertionError("the agent never connected")

        host.before_voice_answer = agent_first
        _, room = await stack.inbound_call()
        host.before_voice_answer = None
        await stack.settle()
        truth = await stack.ground_truth(room)
        assert [p["label"] for p in truth["participants"]] == ["alice", "customer"]  # the agent was first
        assert [r["status"] for r in truth["recordings"]] == ["in-progress"]
        ours = await stack.conference(room)
        assert ours["status"] == "in-progress"
        assert ours["recording"] is not None and ours["recording"]["status"] == "in-progress"
        assert {p["label"]: p["status"] for p in ours["participants"]} == {"alice": "joined", "customer": "joined"}
        types = [e["type"] for e in await stack.events(room)]
        assert {"conference.started", "recording.status_changed"} <= set(types)


async def announce(stack: Stack, room: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    response = await stack.api.post(f"/v1/conferences/{room}/announcements", json=body, headers=headers)
    await stack.settle()
    return response


async def test_announcements_to_a_participant_and_to_the_room(engine: AsyncEngine) -> None:
    """An announcement to `alice` goes to Twilio as her AnnounceUrl, one without `to` as the conference's; each
    ends in `announcement.played`, in the conference's events and on its live stream."""
    async with media_stack(engine) as (stack, _):
        room, _ = await live_call(stack)
        one = await announce(stack, room, {"url": f"{MEDIA}/joining.mp3", "to": "alice"})
        assert one.status_code == 202, one.text
        assert one.json() == {"status": "accepted", "conference_id": room, "url": f"{MEDIA}/joining.mp3",
                              "to": "alice"}
        everyone = await announce(stack, room, {"url": f"{MEDIA}/recorded.mp3"})
        assert everyone.status_code == 202 and everyone.json()["to"] is None
        requests = await stack.rest_requests()
        to_alice = [r["form"] for r in requests if r["operation"] == "UpdateParticipant" and "AnnounceUrl" in r["form"]]
        assert to_alice == [{"AnnounceUrl": [f"{MEDIA}/joining.mp3"], "AnnounceMethod": ["GET"]}]
        to_room = [r["form"] for r in requests if r["operation"] == "UpdateConference"]
        assert to_room == [{"AnnounceUrl": [f"{MEDIA}/recorded.mp3"], "AnnounceMethod": ["GET"]}]

        events = await stack.events(room)
        played = [e["data"] for e in events if e["type"] == "announcement.played"]
        assert [(p["url"], p["label"]) for p in played] == [(f"{MEDIA}/joining.mp3", "alice"),
                                                            (f"{MEDIA}/recorded.mp3", None)]
        requested = [e for e in events if e["type"] == "announcement.requested"]
        assert [(e["data"]["to"], e["actor"]) for e in requested] == [("alice", "admin"), (None, "admin")]
        try:
            async with live_server(stack.app) as url, httpx.AsyncClient(
                    base_url=url, headers=stack.api.headers, timeout=10) as client, open_stream(
                    client, f"/v1/conferences/{room}/stream") as feed:
                replayed = await feed.events(len(events))
        finally:
            await stack.app.state.container.live.aclose()
        assert [m.event for m in replayed].count("announcement.played") == 2


async def test_a_failing_announcement_url_is_announcement_failed(stack: Stack) -> None:
    """A URL Twilio cannot fetch (here a 404) ends in `announcement.failed` with Twilio's reason."""
    room, _ = await live_call(stack)
    response = await announce(stack, room, {"url": f"{MEDIA}/missing.mp3", "to": "customer"})
    assert response.status_code == 202, response.text
    failed = [e["data"] for e in await stack.events(room) if e["type"] == "announcement.failed"]
    assert len(failed) == 1
    assert (failed[0]["url"], failed[0]["label"]) == (f"{MEDIA}/missing.mp3", "customer")
    assert failed[0]["reason"]
    assert not [e for e in await stack.events(room) if e["type"] == "announcement.played"]


async def test_announcement_errors(stack: Stack) -> None:
    """Unknown label 404, a leg not joined 409, a bad URL 422, an unknown or ended conference 404 / 409;
    nothing reaches Twilio for any of them."""
    room, customer = await live_call(stack)
    await stack.set_directory("client:bob", "no-answer", after_s=600)
    dialing = await stack.api.post(f"/v1/conferences/{room}/participants",
                                   json={"to": "client:bob", "role": "agent", "label": "bob"})
    assert dialing.status_code == 202
    await stack.settle(until_quiet=False)
    before = len(await stack.rest_requests())
    cases = [
        (room, {"url": f"{MEDIA}/recorded.mp3", "to": "nobody"}, 404, "participant_not_found"),
        (room, {"url": f"{MEDIA}/recorded.mp3", "to": "bob"}, 409, "participant_not_connected"),
        (room, {"url": "ftp://media.example.com/a.mp3"}, 422, "invalid_request"),
        (room, {"url": "recorded.mp3"}, 422, "invalid_request"),
        (room, {"url": f"{MEDIA}/recorded.mp3", "to": "alice", "loop": 2}, 422, "invalid_request"),
        ("room-CA" + "0" * 32, {"url": f"{MEDIA}/recorded.mp3"}, 404, "conference_not_found"),
    ]
    for conference, body, status, code in cases:
        response = await stack.api.post(f"/v1/conferences/{conference}/announcements", json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert len(await stack.rest_requests()) == before
    await stack.hang_up(customer)
    ended = await stack.api.post(f"/v1/conferences/{room}/announcements", json={"url": f"{MEDIA}/recorded.mp3"})
    assert (ended.status_code, ended.json()["code"]) == (409, "conference_ended")


async def test_an_announcement_repeated_with_its_idempotency_key_plays_once(stack: Stack) -> None:
    """The same Idempotency-Key and body answer the first 202 again; Twilio is asked once."""
    room, _ = await live_call(stack)
    body = {"url": f"{MEDIA}/recorded.mp3"}
    first = await announce(stack, room, body, **{"Idempotency-Key": "announce-1"})
    again = await announce(stack, room, body, **{"Idempotency-Key": "announce-1"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert len([r for r in await stack.rest_requests() if r["operation"] == "UpdateConference"]) == 1


async def test_the_documented_examples_are_accepted(stack: Stack) -> None:
    """Each example the OpenAPI document gives for an announcement is a request the API takes (they name the
    agent `agent-alice`, as every request example does: tests/entry/test_openapi_valid.py)."""
    _, room = await stack.inbound_call()
    dialed = await stack.api.post(f"/v1/conferences/{room}/participants",
                                  json={"to": "client:alice", "role": "agent", "label": "agent-alice"})
    assert dialed.status_code == 202
    await stack.settle()
    operation = (await stack.api.get("/openapi.json")).json()["paths"]["/v1/conferences/{conference_id}/announcements"]
    examples = [e["value"] for e in operation["post"]["requestBody"]["content"]["application/json"]["examples"]
                .values()]
    assert len(examples) == 2
    for example in examples:
        response = await announce(stack, room, example)
        assert response.status_code == 202, (example, response.text)
