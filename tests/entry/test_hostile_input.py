"""Hostile input, one row per case: a 4xx problem (never a 5xx) for API callers, a stored fact for Twilio.

PostgreSQL text and jsonb cannot hold NUL and its integer columns stop at int64: input that would reach the
database as either is answered at the edge. Twilio's own (signed) callbacks always store their fact.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from tests.e2e.support import build_stack
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.sse import live_server
from tests.support.twilio_forms import conference_event, post_signed, voice

CUSTOMER = "CA" + "1" * 32
AGENT = "CA" + "2" * 32
DIALED = "CA" + "5" * 32
CONF_SID = "CF" + "3" * 32
ROOM = f"room-{CUSTOMER}"
ADMIN = {"Authorization": f"Bearer {KEYS['admin']}"}
NUL = "a%00b"  # a NUL byte, percent-encoded in the path as a client would send it

PARTICIPANT = {"to": "+15551112222", "role": "agent"}
CHANGE = {"muted": True}
RECORDING = {"action": "pause"}
TRANSFER = {"kind": "warm", "from": "agent-alice", "to": "+15553334444"}
ANNOUNCEMENT = {"url": "https://media.example.com/recorded.mp3"}

# Every route with an id in its path: (method, path with {c}onference, {p}articipant, {t}ransfer, JSON body).
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/conferences/{c}", None),
    ("GET", "/v1/conferences/{c}/events", None),
    ("GET", "/v1/conferences/{c}/audibility", None),
    ("GET", "/v1/conferences/{c}/timeline", None),
    ("GET", "/v1/conferences/{c}/stream", None),
    ("POST", "/v1/conferences/{c}/participants", PARTICIPANT),
    ("GET", "/v1/conferences/{c}/participants/{p}", None),
    ("PATCH", "/v1/conferences/{c}/participants/{p}", CHANGE),
    ("DELETE", "/v1/conferences/{c}/participants/{p}", None),
    ("POST", "/v1/conferences/{c}/end", None),
    ("POST", "/v1/conferences/{c}/sync", None),
    ("POST", "/v1/conferences/{c}/recording", RECORDING),
    ("POST", "/v1/conferences/{c}/announcements", ANNOUNCEMENT),
    ("POST", "/v1/conferences/{c}/transfers", TRANSFER),
    ("GET", "/v1/transfers/{t}", None),
    ("POST", "/v1/transfers/{t}/complete", None),
    ("POST", "/v1/transfers/{t}/cancel", None),
]
NOT_FOUND = {"c": "conference_not_found", "p": "participant_not_found", "t": "transfer_not_found"}
# Routes whose path id names nothing stored (tests/entry/test_voice_token.py checks a NUL there is a 422).
# A problem type's code is looked up in a fixed catalogue, never stored (tests/entry/test_problem_types.py).
NOT_STORED: set[tuple[str, str]] = {("POST", "/v1/agents/{identity}/voice-token"), ("GET", "/problems/{code}")}


def _nul_cases() -> list[Any]:
    """One case per route and per id in its path, that id carrying the NUL (the others valid)."""
    cases = []
    for method, template, body in ROUTES:
        for name in ("c", "p", "t"):
            if "{" + name + "}" not in template:
                continue
            values = {"c": ROOM, "p": "customer", "t": "tr-1"} | {name: NUL}
            path = template.format(**values)
            cases.append(pytest.param(method, path, body, NOT_FOUND[name], id=f"{method} {template} {name}"))
    return cases


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    if code is not None:
        assert response.json()["code"] == code, response.json()


async def events_of(client: httpx.AsyncClient, conference_id: str = ROOM) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/conferences/{conference_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def open_conference(client: httpx.AsyncClient) -> None:
    """A customer's conference, started, with the customer in it."""
    for cb in (voice(CUSTOMER),
               conference_event(ROOM, CONF_SID, 1, "participant-join", call_sid=CUSTOMER, label="customer",
                                end_on_exit=True),
               conference_event(ROOM, CONF_SID, 2, "conference-start")):
        assert (await post_signed(client, cb.path, cb.params)).status_code in (200, 204)


async def test_the_table_has_every_route_with_a_path_id(client: httpx.AsyncClient) -> None:
    """ROUTES lists every operation of the OpenAPI document whose path has an id (a new one must be added)."""
    spec = (await client.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() if "{" in path for method in item}
    names = {"c": "{conference_id}", "p": "{participant}", "t": "{transfer_id}"}
    assert {(method, template.format(**names)) for method, template, _ in ROUTES} | NOT_STORED == documented


@pytest.mark.parametrize(("method", "path", "body", "code"), _nul_cases())
async def test_a_nul_in_a_path_id_is_a_404(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, code: str
) -> None:
    """No stored id can hold a NUL: such an id names nothing, a 404 problem of its kind (never a 500)."""
    await open_conference(client)
    response = await asyncio.wait_for(client.request(method, path, json=body), timeout=10)
    assert_problem(response, 404, code)


async def test_a_nul_in_a_path_id_still_needs_an_api_key(client: httpx.AsyncClient) -> None:
    """Authentication comes first: without a key, a NUL id is a 401 like any other."""
    response = await client.get(f"/v1/conferences/{NUL}", headers={"Authorization": ""})
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(("params", "status"), [
    pytest.param({"after": str(2**31)}, 200, id="after=2**31"),
    pytest.param({"after": str(2**63 - 1)}, 200, id="after=int64 max"),
    pytest.param({"after": str(2**63)}, 422, id="after=2**63"),
    pytest.param({"after": str(10**30)}, 422, id="after=10**30"),
    pytest.param({"after": "-1"}, 422, id="after=-1"),
    pytest.param({"limit": str(2**63)}, 422, id="limit=2**63"),
    pytest.param({"limit": "0"}, 422, id="limit=0"),
])
async def test_events_paging_beyond_the_column_range(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    """`after` up to int64 pages past the end (an empty page); beyond it, or negative, is a 422 problem."""
    await open_conference(client)
    response = await client.get(f"/v1/conferences/{ROOM}/events", params=params)
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_after": None}
    else:
        assert_problem(response, 422, "invalid_request")


@pytest.fixture
async def served(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client on confctl behind a real server: a stream that wrongly opened would never end in-process."""
    app = create_app(settings(), engine=engine, clock=FixedClock())
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=10) as client:
            yield client
    finally:
        await app.state.container.live.aclose()


@pytest.mark.parametrize("path", [f"/v1/conferences/{ROOM}/stream", "/v1/stream"])
@pytest.mark.parametrize(("header", "query"), [
    pytest.param({"Last-Event-ID": str(2**63)}, {}, id="Last-Event-ID=2**63"),
    pytest.param({"Last-Event-ID": str(10**30)}, {}, id="Last-Event-ID=10**30"),
    pytest.param({"Last-Event-ID": "1e3"}, {}, id="Last-Event-ID=1e3"),
    pytest.param({"Last-Event-ID": "1_0"}, {}, id="Last-Event-ID=1_0"),
    pytest.param({"Last-Event-ID": "+5"}, {}, id="Last-Event-ID=+5"),
    pytest.param({}, {"after": str(2**63)}, id="after=2**63"),
])
async def test_a_stream_resumed_beyond_the_column_range_is_refused_before_it_opens(
    served: httpx.AsyncClient, path: str, header: dict[str, str], query: dict[str, str]
) -> None:
    """An id no stream ever sent is a 422 problem: EventSource gives up on a non-200 instead of reconnecting."""
    await open_conference(served)
    async with served.stream("GET", path, headers=header, params=query) as response:
        assert response.status_code == 422, response.status_code  # before reading: a 200 stream never ends
        await response.aread()
    assert_problem(response, 422, "invalid_request")


def forged(cursor: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("cursor", "statuses"), [
    pytest.param(["2026-11-25T12:00:00+00:00", "room-\u0000"], {422}, id="NUL id"),
    pytest.param(["2026-11-25T12:00:00+00:00"], {422}, id="one element"),
    pytest.param("x", {422}, id="not a list"),
    pytest.param(["2026-11-25T12:00:00", "room-x"], {200, 422}, id="naive time"),
    pytest.param(["0001-01-01T00:00:00-23:59", "room-x"], {200, 422}, id="year 1"),
    pytest.param(["9999-12-31T23:59:59+23:59", "room-x"], {200, 422}, id="year 9999"),
])
async def test_a_forged_cursor_is_never_a_5xx(client: httpx.AsyncClient, cursor: Any, statuses: set[int]) -> None:
    """A cursor this API did not return is a 422 problem when it cannot be used (a NUL id), never a 5xx."""
    response = await client.get("/v1/conferences", params={"cursor": forged(cursor)})
    assert response.status_code in statuses, (response.status_code, response.text)
    if response.status_code == 422:
        assert_problem(response, 422, "invalid_request")


async def test_a_nul_in_a_signed_callback_field_keeps_the_fact(client: httpx.AsyncClient) -> None:
    """A NUL in a field Twilio signed: the fact is stored, the NUL replaced by U+FFFD (as an undecodable byte is)."""
    await open_conference(client)
    join = conference_event(ROOM, CONF_SID, 3, "participant-join", call_sid=AGENT, label="agent\x00x",
                            extra={"SomeNewTwilioField": "\x00"})
    assert (await post_signed(client, join.path, join.params)).status_code == 204
    stored = (await events_of(client))[-1]
    assert stored["type"] == "participant.joined"
    assert stored["data"]["label"] == "agent\ufffdx" and stored["data"]["call_sid"] == AGENT
    labels = [p["label"] for p in (await client.get(f"/v1/conferences/{ROOM}")).json()["participants"]]
    assert labels == ["customer", "agent\ufffdx"]


async def test_a_nul_in_a_required_callback_field_keeps_the_call(client: httpx.AsyncClient) -> None:
    """Even a voice request whose caller ID carries a NUL gets its TwiML and its conference."""
    cb = voice(CUSTOMER, caller="+1555\x00")
    response = await post_signed(client, cb.path, cb.params)
    assert response.status_code == 200 and "<Conference" in response.text, response.text
    conference = (await client.get(f"/v1/conferences/{ROOM}")).json()
    assert conference["customer"]["from"] == "+1555\ufffd"


async def test_a_nul_in_a_callback_url_query_keeps_the_fact(client: httpx.AsyncClient) -> None:
    """A NUL in the query of the (signed) callback URL does not lose the fact either."""
    await open_conference(client)
    path = f"/twilio/call-status?conference_id={ROOM}&label=x%00y"
    params = {"CallSid": DIALED, "CallStatus": "ringing", "SequenceNumber": "0", "AccountSid": "AC" + "a" * 32}
    assert (await post_signed(client, path, params)).status_code == 204
    stored = (await events_of(client))[-1]
    assert stored["type"] == "call.status_changed" and stored["data"]["label"] == "x\ufffdy"


HUGE = "X" * 5000  # beyond what PostgreSQL can index (a btree entry is at most ~2.7 kB)


@pytest.mark.parametrize(("case", "callback"), [
    ("CallSid", lambda: voice("CA" + HUGE)),
    ("ConferenceSid", lambda: conference_event(ROOM, "CF" + HUGE, 3, "participant-join", call_sid=AGENT)),
    ("FriendlyName", lambda: conference_event("room-" + HUGE, CONF_SID, 3, "participant-join", call_sid=AGENT)),
    ("query", lambda: type(voice(CUSTOMER))(f"/twilio/call-status?conference_id={HUGE}",
                                            {"CallSid": DIALED, "CallStatus": "ringing"})),
])
async def test_a_callback_id_no_twilio_could_send_is_a_400_not_a_500(
    client: httpx.AsyncClient, case: str, callback: Any
) -> None:
    """A signed callback with an id thousands of characters long (Twilio's SIDs are 34): 400, not a database
    error."""
    await open_conference(client)
    cb = callback()
    response = await post_signed(client, cb.path, cb.params)
    assert response.status_code == 400, f"{case}: {response.status_code} {response.text[:200]}"
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_oversized_optional_sid_is_dropped_and_the_fact_kept(client: httpx.AsyncClient) -> None:
    """An optional SID field no Twilio could send (CallSidEndingConference) is dropped; the fact is stored."""
    await open_conference(client)
    end = conference_event(ROOM, CONF_SID, 9, "conference-end", extra={"CallSidEndingConference": "CA" + HUGE})
    assert (await post_signed(client, end.path, end.params)).status_code == 204
    assert (await events_of(client))[-1]["type"] == "conference.ended"


@pytest.mark.parametrize("sip", ["²", "١٢٣", "+486", " 486", "4_86", "9" * 30, "-1"])
async def test_an_unusable_sip_response_code_is_dropped_and_the_fact_kept(
    client: httpx.AsyncClient, sip: str
) -> None:
    """A SipResponseCode that is not plain ASCII digits within int64 is dropped; the call status is stored."""
    await open_conference(client)
    params = {"CallSid": DIALED, "CallStatus": "failed", "SequenceNumber": "2", "SipResponseCode": sip,
              "AccountSid": "AC" + "a" * 32}
    response = await post_signed(client, f"/twilio/call-status?conference_id={ROOM}", params)
    assert response.status_code == 204, response.text
    stored = (await events_of(client))[-1]
    assert stored["type"] == "call.status_changed" and stored["data"]["status"] == "failed"
    assert stored["data"]["sip_response_code"] is None


async def test_a_plain_sip_response_code_is_kept(client: httpx.AsyncClient) -> None:
    """The usual case still works: SipResponseCode=486 is stored as 486."""
    await open_conference(client)
    params = {"CallSid": DIALED, "CallStatus": "busy", "SequenceNumber": "2", "SipResponseCode": "486",
              "AccountSid": "AC" + "a" * 32}
    assert (await post_signed(client, f"/twilio/call-status?conference_id={ROOM}", params)).status_code == 204
    assert (await events_of(client))[-1]["data"]["sip_response_code"] == 486


@pytest.mark.parametrize("sequence", [str(10**30), str(2**63), "1e3", "²", "+4", "-4", "0x10"])
async def test_an_unusable_sequence_number_keeps_the_fact_and_does_not_poison_ordering(
    client: httpx.AsyncClient, sequence: str
) -> None:
    """A SequenceNumber beyond int64 or not plain digits is dropped: the fact is stored, later snapshots apply."""
    await open_conference(client)
    join = conference_event(ROOM, CONF_SID, 3, "participant-join", call_sid=AGENT, label="agent-alice",
                            muted=True)
    join.params["SequenceNumber"] = sequence
    assert (await post_signed(client, join.path, join.params)).status_code == 204
    joined = (await events_of(client))[-1]
    assert joined["type"] == "participant.joined" and joined["data"]["sequence"] == -1
    # Twilio repeats the delivery: stored once.
    assert (await post_signed(client, join.path, join.params)).status_code == 204
    assert [e["type"] for e in await events_of(client)].count("participant.joined") == 2
    hold = conference_event(ROOM, CONF_SID, 4, "participant-hold", call_sid=AGENT, label="agent-alice", hold=True)
    assert (await post_signed(client, hold.path, hold.params)).status_code == 204
    agent = next(p for p in (await client.get(f"/v1/conferences/{ROOM}")).json()["participants"]
                 if p["label"] == "agent-alice")
    assert agent["status"] == "joined" and agent["hold"] is True and agent["muted"] is False
    leave = conference_event(ROOM, CONF_SID, 5, "participant-leave", call_sid=AGENT, label="agent-alice")
    leave.params["SequenceNumber"] = sequence + "0"  # another unusable number: another fact, not a repeat
    assert (await post_signed(client, leave.path, leave.params)).status_code == 204
    assert (await events_of(client))[-1]["type"] == "participant.left"


async def test_an_unusable_call_status_sequence_number_keeps_the_fact(client: httpx.AsyncClient) -> None:
    """Call status callbacks drop an unusable SequenceNumber the same way."""
    await open_conference(client)
    params = {"CallSid": DIALED, "CallStatus": "ringing", "SequenceNumber": str(10**30),
              "AccountSid": "AC" + "a" * 32}
    assert (await post_signed(client, f"/twilio/call-status?conference_id={ROOM}", params)).status_code == 204
    stored = (await events_of(client))[-1]
    assert stored["type"] == "call.status_changed" and stored["data"]["sequence"] == -1


@pytest.mark.parametrize("timestamp", ["Fri, 31 Dec 9999 23:59:59 -0100", "Mon, 01 Jan 2020 00:00:00 +9999",
                                       "\x00", "Mon, 01 Jan 99999 00:00:00 +0000"])
async def test_an_unusable_timestamp_falls_back_to_our_clock(client: httpx.AsyncClient, timestamp: str) -> None:
    """A Timestamp out of datetime's range is dropped (our clock stands in): the fact is stored."""
    await open_conference(client)
    join = conference_event(ROOM, CONF_SID, 3, "participant-join", call_sid=AGENT, label="agent-alice")
    join.params["Timestamp"] = timestamp
    assert (await post_signed(client, join.path, join.params)).status_code == 204
    stored = (await events_of(client))[-1]
    assert stored["type"] == "participant.joined" and stored["data"]["at"] == "2026-11-25T12:00:00+00:00"


@pytest.mark.parametrize(("method", "path", "body"), [
    pytest.param("PATCH", "/participants/customer", {"hold": True, "hold_music_url": "https://x/\u0000"},
                 id="hold_music_url"),
    pytest.param("POST", "/participants", {"to": "client:bob\u0000", "role": "agent"}, id="to"),
    pytest.param("POST", "/participants", {"to": "+15551230002", "role": "agent", "label": "a\u0000"}, id="label"),
    pytest.param("POST", "/transfers", {"kind": "cold", "from": "customer", "to": "+15551230003",
                                        "fallback_to": "sip:a\u0000@b"}, id="fallback_to"),
])
async def test_a_nul_in_a_command_body_is_a_422(
    engine: AsyncEngine, method: str, path: str, body: dict[str, Any]
) -> None:
    """A command is stored before Twilio is called: a NUL in any of its strings is a 422 problem, not a 500."""
    async with build_stack(engine) as stack:
        _, room = await stack.inbound_call()
        response = await stack.api.request(method, f"/v1/conferences/{room}{path}", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in ("invalid_request", "invalid_address", "invalid_label")


@pytest.mark.parametrize(("method", "path", "body", "code"), [
    pytest.param("PATCH", "/participants/customer", {"muted": 0.0}, "invalid_request", id="muted=0.0"),
    pytest.param("PATCH", "/participants/customer", {"hold": "true"}, "invalid_request", id="hold='true'"),
    pytest.param("POST", "/participants", {"to": "+15551234567", "role": "agent", "timeout_s": "30"},
                 "invalid_request", id="timeout_s='30'"),
    pytest.param("POST", "/participants", {"to": "+1٥٥٥1234567", "role": "agent"}, "invalid_address",
                 id="to with Arabic-Indic digits"),
    pytest.param("POST", "/participants", {"to": "+15551234567\n", "role": "agent"}, "invalid_address",
                 id="to with a trailing newline"),
    pytest.param("POST", "/transfers", {"kind": "cold", "from": "agent", "to": "+15551234567", "fallback_to": "x"},
                 "invalid_address", id="fallback_to"),
])
async def test_a_body_not_as_documented_is_a_422(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], code: str
) -> None:
    """Bodies are taken as the OpenAPI document states them: no coercion of types, addresses in their form."""
    await open_conference(client)
    response = await client.request(method, f"/v1/conferences/{ROOM}{path}", json=body)
    assert_problem(response, 422, code)


async def test_an_integral_number_is_an_integer(client: httpx.AsyncClient) -> None:
    """As in JSON Schema, 30.0 is an integer: accepted where an integer is documented (here the command then
    finds no Twilio gateway configured: 503)."""
    await open_conference(client)
    response = await client.post(f"/v1/conferences/{ROOM}/participants",
                                 json={"to": "+15551234567", "role": "agent", "timeout_s": 30.0})
    assert_problem(response, 503, "twilio_unavailable")


async def test_a_body_that_is_not_utf8_is_a_422(client: httpx.AsyncClient) -> None:
    """A body that cannot even be decoded is refused like malformed JSON: 422 invalid_request, not a bare 400."""
    await open_conference(client)
    response = await client.post(f"/v1/conferences/{ROOM}/participants", content=b'{"to": "\xff"}',
                                 headers={"Content-Type": "application/json"})
    assert_problem(response, 422, "invalid_request")
