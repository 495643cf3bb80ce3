"""Every webhook URL confctl hands Twilio carries connection overrides, and the simulator honours them.

The URLs are read where Twilio reads them: the TwiML confctl answers the voice request with, and the
CreateParticipant requests the simulator received. A callback confctl answers 503 (an ASGI wrapper in
front of the real app fails the first delivery) is retried by the simulator and stored exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from xml.etree import ElementTree

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confctl.service.webhook_urls import CONNECTION_OVERRIDES
from tests.e2e.support import PUBLIC_URL, Stack, build_stack

FRAGMENT = "#" + CONNECTION_OVERRIDES


class VoiceAnswers:
    """In front of confctl: keeps the body of every answer to the voice request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bodies: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/twilio/voice":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        self.bodies.append(b"".join(chunks).decode())


class FailFirstConferenceCallback:
    """In front of confctl: the first conference status callback is answered 503.

    `after_confctl`: confctl handles it first and only its answer is replaced (a proxy giving up on an answer
    that confctl had already stored); otherwise confctl never sees it (down, or its database away).
    """

    def __init__(self, app: ASGIApp, *, after_confctl: bool) -> None:
        self.app = app
        self.after_confctl = after_confctl
        self.failed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.failed or scope["type"] != "http" or scope["path"] != "/twilio/conference-status":
            await self.app(scope, receive, send)
            return
        self.failed += 1
        if self.after_confctl:
            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
        await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def confctl_urls(values: list[str]) -> list[str]:
    return [v for v in values if v.startswith(PUBLIC_URL)]


@pytest.fixture
async def recording_stack(engine: AsyncEngine) -> AsyncIterator[Stack]:
    """The stack with CONFCTL_RECORD=true, so the TwiML also carries the recording callback."""
    async with build_stack(engine, record=True) as s:
        yield s


async def test_every_url_confctl_hands_twilio_carries_the_overrides(recording_stack: Stack) -> None:
    """TwiML callbacks (conference, recording) and CreateParticipant's callbacks all end in the same fragment."""
    stack = recording_stack
    answers = VoiceAnswers(stack.app)
    stack.confctl.app = answers
    _, room = await stack.inbound_call()
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": "client:alice", "role": "agent", "label": "alice"})
    assert response.status_code == 202, response.text
    await stack.settle()

    [twiml] = answers.bodies
    conference = ElementTree.fromstring(twiml).find("./Dial/Conference")
    assert conference is not None
    in_twiml = confctl_urls(list(conference.attrib.values()))
    assert {"statusCallback", "recordingStatusCallback"} <= {k for k, v in conference.attrib.items() if v in in_twiml}
    [dial] = [r for r in await stack.rest_requests() if r["operation"] == "CreateParticipant"]
    in_rest = confctl_urls([v for values in dial["form"].values() for v in values])
    assert {"StatusCallback", "ConferenceStatusCallback"} <= {k for k, vs in dial["form"].items() if vs[0] in in_rest}
    for url in in_twiml + in_rest:
        assert url.endswith(FRAGMENT), url
        assert url.count("#") == 1, url
    # The first participant's callback settings win: both ways in name the very same URL.
    assert conference.attrib["statusCallback"] == dial["form"]["ConferenceStatusCallback"][0]
    # And the simulator sent them without the fragment, signed so that confctl accepted them.
    sent = (await stack.sim.get("/simulator/callbacks")).json()
    assert sent and all("#" not in hook["url"] and hook["status"] in (200, 204) for hook in sent), sent
    assert {hook["fragment"] for hook in sent if hook["kind"] != "voice"} == {CONNECTION_OVERRIDES}


@pytest.mark.parametrize("after_confctl", [False, True], ids=["confctl-unreachable", "answer-lost-after-store"])
async def test_a_conference_callback_answered_503_is_retried_and_stored_once(
    stack: Stack, after_confctl: bool
) -> None:
    """The customer's join answered 503 once: the simulator sends it again, and the join is stored exactly once."""
    wrapper = FailFirstConferenceCallback(stack.app, after_confctl=after_confctl)
    stack.confctl.app = wrapper
    call_sid, room = await stack.inbound_call()

    assert wrapper.failed == 1
    sent = [h for h in (await stack.sim.get("/simulator/callbacks")).json() if h["kind"] == "conference-status"]
    assert [(h["attempt"], h["status"], h["retried"]) for h in sent] == [(1, 503, True), (2, 204, False)]
    events = await stack.events(room)
    assert Counter(e["type"] for e in events)["participant.joined"] == 1
    assert [e["data"]["call_sid"] for e in events if e["type"] == "participant.joined"] == [call_sid]
    conference = await stack.conference(room)
    assert [(p["label"], p["status"]) for p in conference["participants"]] == [("customer", "joined")]
