"""HttpxTwilioHttpClient and SdkTwilioGateway's wire behaviour: URLs, encoding, timeouts, errors, retries.

Twilio is replaced by `httpx.MockTransport` here (one-off failures are what it is for) and, for the
timeout and connect checks, by real sockets on localhost. The simulator tests live next door.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import stamina

from confctl.adapters.twilio_gateway import SdkTwilioGateway
from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.adapters.twilio_retry import RetryPolicy
from confctl.service.gateway import DialRequest, ParticipantUpdate, TwilioError, TwilioUnavailable

ACCOUNT = "AC" + "0" * 32
TOKEN = "tok"
CONF = "CF" + "1" * 32
CALL = "CA" + "2" * 32
BASE = f"/2010-04-01/Accounts/{ACCOUNT}"

Reply = httpx.Response | Exception


def participant_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "account_sid": ACCOUNT,
        "call_sid": CALL,
        "conference_sid": CONF,
        "label": "agent",
        "status": "queued",
        "muted": False,
        "hold": False,
        "coaching": False,
        "call_sid_to_coach": None,
        "end_conference_on_exit": False,
        "start_conference_on_enter": True,
    }
    return body | overrides


def call_json(status: str) -> dict[str, object]:
    return {"sid": CALL, "status": status, "from": "+1555", "to": "+1666", "direction": "outbound-api"}


class FakeTwilio:
    """A MockTransport handler answering from a script of replies and recording every request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def gateway(self, base_url: str = "http://sim.test") -> SdkTwilioGateway:
        http = HttpxTwilioHttpClient(base_url=base_url, transport=httpx.MockTransport(self))
        return SdkTwilioGateway(ACCOUNT, TOKEN, http_client=http)

    def form(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].content.decode())


def ok(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def twilio_error(status: int, code: int, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"},
    )


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


DIAL = DialRequest(from_="+15550001", to="+15550002", label="agent", status_callback="http://cb.test/s")


def test_construction_needs_no_event_loop() -> None:
    """The client and the gateway can be built outside a running event loop (at import or in a CLI)."""
    gateway = SdkTwilioGateway(ACCOUNT, TOKEN, base_url="http://127.0.0.1:8010")
    assert gateway is not None


def test_target_moves_url_onto_base_url() -> None:
    """`base_url` swaps scheme and host, prefixes its path and keeps the SDK's path and query."""
    http = HttpxTwilioHttpClient(base_url="http://127.0.0.1:8010/twilio/")
    url = f"https://api.twilio.com{BASE}/Conferences.json?Status=completed&PageSize=50"
    assert http.target(url) == f"http://127.0.0.1:8010/twilio{BASE}/Conferences.json?Status=completed&PageSize=50"
    assert HttpxTwilioHttpClient().target(url) == url


async def test_requests_go_to_base_url_with_basic_auth() -> None:
    """Every request reaches the rewritten host, authenticated with the account SID and token."""
    fake = FakeTwilio(ok(call_json("ringing")))
    await fake.gateway("http://sim.test:8010").fetch_call(CALL)
    request = fake.requests[0]
    assert str(request.url) == f"http://sim.test:8010{BASE}/Calls/{CALL}.json"
    assert request.headers["authorization"] == httpx.BasicAuth(ACCOUNT, TOKEN)._auth_header


async def test_get_has_no_body_and_post_is_a_form_with_repeated_keys() -> None:
    """GETs carry no form body; CreateParticipant sends DialRequest as PascalCase form fields."""
    fake = FakeTwilio(ok(participant_json()), ok(participant_json(), 201))
    gateway = fake.gateway()
    await gateway.fetch_participant(CONF, "agent")
    assert fake.requests[0].content == b""
    assert "content-type" not in fake.requests[0].headers
    request = DialRequest(
        from_="+15550001",
        to="client:bob",
        label="agent",
        status_callback="http://cb.test/call",
        conference_status_callback="http://cb.test/conf",
        conference_status_callback_events=("start", "end", "join"),
        timeout_s=20,
        muted=True,
        call_sid_to_coach=CALL,
        coaching=True,
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        beep=True,
        wait_url="http://cb.test/wait",
        conference_record=True,
        conference_recording_status_callback="http://cb.test/rec",
        conference_recording_status_callback_events=("in-progress", "completed"),
    )
    await gateway.create_participant("room 1", request)
    assert fake.requests[1].url.raw_path == f"{BASE}/Conferences/room%201/Participants.json".encode()
    form = fake.form()
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["ConferenceStatusCallbackEvent"] == ["start", "end", "join"]
    assert form["ConferenceRecordingStatusCallbackEvent"] == ["in-progress", "completed"]
    expected = {
        "From": "+15550001",
        "To": "client:bob",
        "Label": "agent",
        "StatusCallback": "http://cb.test/call",
        "ConferenceStatusCallback": "http://cb.test/conf",
        "Timeout": "20",
        "Muted": "true",
        "Coaching": "true",
        "CallSidToCoach": CALL,
        "StartConferenceOnEnter": "false",
        "EndConferenceOnExit": "true",
        "Beep": "true",
        "WaitUrl": "http://cb.test/wait",
        "ConferenceRecord": "record-from-start",
        "ConferenceRecordingStatusCallback": "http://cb.test/rec",
    }
    assert {k: form[k] for k in expected} == {k: [v] for k, v in expected.items()}
    assert "Hold" not in form
    assert "HoldUrl" not in form


async def test_dial_on_hold_is_refused_before_sending() -> None:
    """CreateParticipant has no Hold, so a DialRequest with hold=True fails without a request."""
    fake = FakeTwilio(ok(participant_json(), 201))
    with pytest.raises(ValueError, match="Hold"):
        await fake.gateway().create_participant(CONF, dataclasses.replace(DIAL, hold=True))
    assert fake.requests == []


async def test_label_is_one_percent_encoded_path_segment() -> None:
    """A label with `/`, space, `?` and non-ASCII reaches Twilio as one percent-encoded segment."""
    fake = FakeTwilio(ok(participant_json(label="a/b c?d#é")))
    snapshot = await fake.gateway().update_participant(CONF, "a/b c?d#é", ParticipantUpdate(hold=True))
    raw_path = fake.requests[0].url.raw_path.decode()
    assert raw_path == f"{BASE}/Conferences/{CONF}/Participants/a%2Fb%20c%3Fd%23%C3%A9.json"
    assert fake.form() == {"Hold": ["true"]}
    assert snapshot.label == "a/b c?d#é"


async def test_error_body_becomes_twilio_error() -> None:
    """Twilio's JSON error body becomes TwilioError with its status, code and bare message."""
    fake = FakeTwilio(twilio_error(400, 16025, "Participant label already in use"))
    with pytest.raises(TwilioError) as caught:
        await fake.gateway().create_participant(CONF, DIAL)
    assert (caught.value.status, caught.value.code) == (400, 16025)
    assert caught.value.message == "Participant label already in use"


async def test_4xx_is_not_retried() -> None:
    """A refusal (404) is final: one request, TwilioError."""
    fake = FakeTwilio(twilio_error(404, 20404, "not found"))
    with pytest.raises(TwilioError):
        await fake.gateway().fetch_conference(CONF)
    assert len(fake.requests) == 1


async def test_5xx_on_get_is_retried_until_it_succeeds() -> None:
    """A GET that meets a 503 is sent again and the later success is returned."""
    conference = {"sid": CONF, "friendly_name": "room", "status": "in-progress"}
    fake = FakeTwilio(twilio_error(503, 20503, "busy"), ok(conference))
    snapshot = await fake.gateway().fetch_conference(CONF)
    assert snapshot.status == "in-progress"
    assert len(fake.requests) == 2


async def test_5xx_on_get_gives_unavailable_after_all_attempts() -> None:
    """A GET that keeps failing with 500 is tried `attempts` times, then TwilioUnavailable."""
    fake = FakeTwilio(twilio_error(500, 20500, "oops"))
    with pytest.raises(TwilioUnavailable, match="500"):
        await fake.gateway().list_participants(CONF)
    assert len(fake.requests) == 3


async def test_create_is_not_retried_after_5xx_or_read_timeout() -> None:
    """A create that may have reached Twilio (500, read timeout) is sent once only."""
    for failure in (twilio_error(500, 20500, "oops"), httpx.ReadTimeout("slow")):
        fake = FakeTwilio(failure, ok(participant_json(), 201))
        with pytest.raises(TwilioUnavailable):
            await fake.gateway().create_participant(CONF, DIAL)
        assert len(fake.requests) == 1
    fake = FakeTwilio(twilio_error(502, 20500, "bad gateway"), ok(call_json("queued"), 201))
    with pytest.raises(TwilioUnavailable):
        await fake.gateway().create_call("+2", "+1", url="http://cb.test/voice")
    assert len(fake.requests) == 1


async def test_create_is_retried_when_it_cannot_have_been_sent() -> None:
    """A create that failed to connect, or was rate limited (429), is sent again."""
    for failure in (httpx.ConnectError("refused"), twilio_error(429, 20429, "Too Many Requests")):
        fake = FakeTwilio(failure, ok(participant_json(), 201))
        snapshot = await fake.gateway().create_participant(CONF, DIAL)
        assert snapshot.call_sid == CALL
        assert len(fake.requests) == 2


async def test_connect_error_becomes_unavailable() -> None:
    """A Twilio that cannot be reached gives TwilioUnavailable after the allowed attempts."""
    fake = FakeTwilio(httpx.ConnectError("refused"))
    with pytest.raises(TwilioUnavailable, match="ConnectError"):
        await fake.gateway().end_conference(CONF)
    assert len(fake.requests) == 3


async def test_connect_error_on_a_real_closed_port() -> None:
    """With the default transport, a closed port (nothing listening) gives TwilioUnavailable."""
    port = await _free_port()
    gateway = SdkTwilioGateway(ACCOUNT, TOKEN, base_url=f"http://127.0.0.1:{port}", timeout_s=2)
    try:
        with pytest.raises(TwilioUnavailable, match="ConnectError"):
            await gateway.fetch_call(CALL)
    finally:
        await gateway.aclose()


async def test_delete_retried_after_lost_answer_treats_404_as_done() -> None:
    """A DELETE retried after a 5xx that finds the participant gone (404) counts as removed."""
    fake = FakeTwilio(twilio_error(503, 20503, "busy"), twilio_error(404, 20404, "gone"))
    await fake.gateway().remove_participant(CONF, "agent")
    assert [r.method for r in fake.requests] == ["DELETE", "DELETE"]


async def test_hang_up_cancels_a_ringing_call() -> None:
    """hang_up_call cancels a ringing call and leaves an ended one alone."""
    fake = FakeTwilio(ok(call_json("ringing")), ok(call_json("canceled")))
    assert (await fake.gateway().hang_up_call(CALL)).status == "canceled"
    assert fake.form() == {"Status": ["canceled"]}
    fake = FakeTwilio(ok(call_json("in-progress")), ok(call_json("completed")))
    assert (await fake.gateway().hang_up_call(CALL)).status == "completed"
    assert fake.form() == {"Status": ["completed"]}
    fake = FakeTwilio(ok(call_json("busy")))
    assert (await fake.gateway().hang_up_call(CALL)).status == "busy"
    assert len(fake.requests) == 1


async def test_default_and_per_call_timeouts_reach_httpx() -> None:
    """The constructor timeout is the default for every request; a per-call timeout overrides it."""
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok(call_json("queued"))

    http = HttpxTwilioHttpClient(timeout=3.5, transport=httpx.MockTransport(handler))
    await http.request("GET", "https://api.twilio.com/x.json")
    await http.request("GET", "https://api.twilio.com/x.json", timeout=0.5)
    assert [t["read"] for t in seen] == [3.5, 0.5]
    with pytest.raises(ValueError, match="0"):
        await http.request("GET", "https://api.twilio.com/x.json", timeout=0)


async def test_timeout_really_applies_to_a_silent_server() -> None:
    """A server that accepts but never answers is given up on after the timeout, not waited on forever."""
    async with _silent_server() as port:
        gateway = SdkTwilioGateway(
            ACCOUNT,
            TOKEN,
            base_url=f"http://127.0.0.1:{port}",
            timeout_s=0.2,
            retry=RetryPolicy(attempts=1),
        )
        started = time.monotonic()
        try:
            with pytest.raises(TwilioUnavailable, match="ReadTimeout"):
                await gateway.fetch_conference(CONF)
        finally:
            await gateway.aclose()
        assert time.monotonic() - started < 2


async def test_per_call_timeout_overrides_a_long_default() -> None:
    """A short per-call timeout ends the wait even when the client's default is long."""
    async with (
        _silent_server() as port,
        HttpxTwilioHttpClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.request("GET", "https://api.twilio.com/x.json", timeout=0.2)
        assert time.monotonic() - started < 2


async def _free_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


class _silent_server:  # noqa: N801  # used like a function: `async with _silent_server() as port`
    """A TCP server on localhost that reads requests and never answers."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> int:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            await reader.read(65536)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_list_page_error_becomes_twilio_error() -> None:
    """A list whose page Twilio refuses gives TwilioError with Twilio's code, like any other request."""
    fake = FakeTwilio(twilio_error(403, 20003, "Authenticate"))
    with pytest.raises(TwilioError) as caught:
        await fake.gateway().list_recordings(CONF)
    assert (caught.value.status, caught.value.code, caught.value.message) == (403, 20003, "Authenticate")
