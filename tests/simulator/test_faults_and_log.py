"""Fault injection, the request log and basic auth."""

from __future__ import annotations

import time

import httpx

from confctl.simulator import Simulator
from tests.simulator.conftest import ACCOUNT, Recorder, api, dial, inbound, truth


async def test_rest_error_fault_answers_the_status_and_does_nothing(client: httpx.AsyncClient, sim: Simulator) -> None:
    """With rest_error_rate=1 every REST request gets the configured status and Twilio's error body."""
    _, conference = await inbound(client, sim)
    faults = await client.put("/simulator/faults", json={"rest_error_rate": 1, "rest_error_status": 503})
    assert faults.json()["rest_error_status"] == 503
    response = await dial(client, conference, "client:agent", "agent")
    assert response.status_code == 503
    assert response.json()["code"] == 20503
    await client.put("/simulator/faults", json={})
    await sim.settle()
    assert [p["label"] for p in (await truth(client, conference))["participants"]] == ["customer"]
    assert (await dial(client, conference, "client:agent", "agent")).status_code == 201


async def test_duplicate_fault_resends_the_same_signed_callback(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """With callback_duplicate_rate=1 each callback arrives twice, byte for byte the same request."""
    await client.put("/simulator/faults", json={"callback_duplicate_rate": 1, "seed": 7})
    _, conference = await inbound(client, sim)
    events = recorder.conference_events(conference)
    assert len(events) == 2
    assert events[0] == events[1]
    hooks = [h for h in recorder.hooks if h.path == "/twilio/conference-status"]
    assert hooks[0].headers["x-twilio-signature"] == hooks[1].headers["x-twilio-signature"]
    assert hooks[0].headers["i-twilio-idempotency-token"] == hooks[1].headers["i-twilio-idempotency-token"]
    assert len(recorder.at("/twilio/voice")) == 1  # TwiML fetches are never duplicated


async def test_reorder_fault_shuffles_waiting_callbacks(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """With callback_reorder and a seed, callbacks queued together arrive in a shuffled order, none lost."""
    _, conference = await inbound(client, sim)
    for label in ("a", "b", "c", "d"):
        await dial(client, conference, f"client:{label}", label)
    await sim.settle()
    await client.put("/simulator/faults", json={"callback_reorder": True, "seed": 3})
    await client.post(api(f"/Conferences/{conference}.json"), data={"Status": "completed"})
    await sim.settle()
    numbers = [int(e["SequenceNumber"]) for e in recorder.conference_events(conference)]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    tail = numbers[-6:]  # five leaves and the end, all queued by one request
    assert tail != sorted(tail)


async def test_delay_fault_sleeps_before_each_callback(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """callback_delay_ms holds every callback back by that long."""
    await client.put("/simulator/faults", json={"callback_delay_ms": 30})
    started = time.monotonic()
    await inbound(client, sim)
    assert time.monotonic() - started >= 0.03
    assert len(recorder.at("/twilio/conference-status")) == 1


async def test_requests_log_lists_every_rest_request(client: httpx.AsyncClient, sim: Simulator) -> None:
    """GET /simulator/requests returns each REST request in order with its params and answer."""
    await client.get(api("/Conferences.json"), params={"Status": "init"})
    await dial(client, "room-log", "client:a", "a", StatusCallbackEvent=["initiated", "completed"])
    await client.get(api("/Calls/CA00000000000000000000000000000000.json"))
    log = (await client.get("/simulator/requests")).json()
    assert [(r["method"], r["operation"], r["status"]) for r in log] == [
        ("GET", "ListConference", 200),
        ("POST", "CreateParticipant", 201),
        ("GET", "FetchCall", 404),
    ]
    assert log[0]["query"] == {"Status": ["init"]}
    assert log[1]["path"] == api("/Conferences/room-log/Participants.json")
    assert log[1]["form"]["StatusCallbackEvent"] == ["initiated", "completed"]
    assert log[1]["form"]["Label"] == ["a"]


async def test_basic_auth_is_required(sim: Simulator) -> None:
    """A missing or wrong account SID / token pair gets 401 with code 20003."""
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as anonymous:
        missing = await anonymous.get(api("/Conferences.json"))
        wrong = await anonymous.get(api("/Conferences.json"), auth=(ACCOUNT, "wrong"))
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["code"] == 20003
        assert response.json()["status"] == 401
    assert [r["status"] for r in (await anonymous_log(sim))] == [401, 401]


async def test_other_accounts_and_unknown_resources_are_20404(client: httpx.AsyncClient) -> None:
    """A path under another account, an unknown SID or an unknown route is 404 with code 20404."""
    other = "/2010-04-01/Accounts/AC" + "2" * 32 + "/Conferences.json"
    unknown = api("/Conferences/CF" + "0" * 32 + ".json")
    for path in (other, unknown, api("/Nope.json")):
        response = await client.get(path)
        assert (response.status_code, response.json()["code"]) == (404, 20404)


async def anonymous_log(sim: Simulator) -> list[dict[str, object]]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim.test") as c:
        result: list[dict[str, object]] = (await c.get("/simulator/requests")).json()
        return result
