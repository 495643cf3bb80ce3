"""Every error code of API.md §5 the control endpoints can produce, idempotency, and racing commands."""

from __future__ import annotations

import asyncio

import httpx

from tests.e2e.conftest import Stack
from tests.e2e.test_hold_mute_supervision import live_call


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]


async def test_not_found_codes(stack: Stack) -> None:
    """404 conference_not_found, participant_not_found, transfer_not_found."""
    problem(await stack.api.post("/v1/conferences/room-nope/participants", json={"to": "client:a", "role": "agent"}),
            404, "conference_not_found")
    problem(await stack.api.post("/v1/conferences/room-nope/end"), 404, "conference_not_found")
    room, _ = await live_call(stack)
    problem(await stack.api.patch(f"/v1/conferences/{room}/participants/ghost", json={"hold": True}),
            404, "participant_not_found")
    problem(await stack.api.get(f"/v1/conferences/{room}/participants/ghost"), 404, "participant_not_found")
    problem(await stack.api.get("/v1/transfers/TRnope"), 404, "transfer_not_found")
    problem(await stack.api.post("/v1/transfers/TRnope/complete"), 404, "transfer_not_found")


async def test_conflict_codes(stack: Stack) -> None:
    """409 label_taken, coach_target_not_connected, participant_not_connected, transfer_in_progress,
    invalid_transition and conference_ended."""
    room, _ = await live_call(stack)
    api = stack.api
    problem(await api.post(f"/v1/conferences/{room}/participants",
                           json={"to": "client:x", "role": "agent", "label": "alice"}), 409, "label_taken")
    problem(await api.post(f"/v1/conferences/{room}/participants",
                           json={"to": "client:s", "role": "supervisor", "mode": "coach", "coach": "nobody"}),
            409, "coach_target_not_connected")
    await stack.set_directory("client:slow", "answer", after_s=1000)
    await api.post(f"/v1/conferences/{room}/participants", json={"to": "client:slow", "role": "agent",
                                                                  "label": "slow"})
    problem(await api.patch(f"/v1/conferences/{room}/participants/slow", json={"muted": True}),
            409, "participant_not_connected")
    started = (await api.post(f"/v1/conferences/{room}/transfers",
                              json={"kind": "warm", "from": "alice", "to": "client:bob"})).json()
    problem(await api.post(f"/v1/conferences/{room}/transfers",
                           json={"kind": "cold", "from": "alice", "to": "client:carol"}), 409, "transfer_in_progress")
    await stack.settle()
    await api.post(f"/v1/transfers/{started['id']}/cancel")
    await stack.settle()
    problem(await api.post(f"/v1/transfers/{started['id']}/complete"), 409, "invalid_transition")
    problem(await api.post(f"/v1/transfers/{started['id']}/cancel"), 409, "invalid_transition")
    problem(await api.post(f"/v1/conferences/{room}/recording", json={"action": "resume"}), 409,
            "invalid_transition")
    await api.post(f"/v1/conferences/{room}/end")
    await stack.settle()
    problem(await api.patch(f"/v1/conferences/{room}/participants/alice", json={"hold": True}),
            409, "conference_ended")
    problem(await api.post(f"/v1/conferences/{room}/end"), 409, "conference_ended")


async def test_unprocessable_codes(stack: Stack) -> None:
    """422 not_a_supervisor and invalid_address, checked before Twilio is called."""
    room, _ = await live_call(stack)
    before = len(await stack.rest_requests())
    problem(await stack.api.post(f"/v1/conferences/{room}/participants",
                                 json={"to": "client:x", "role": "agent", "mode": "monitor"}), 422, "not_a_supervisor")
    problem(await stack.api.patch(f"/v1/conferences/{room}/participants/alice", json={"mode": "barge"}),
            422, "not_a_supervisor")
    for bad in ("5551234", "+1", "tel:+15551234567", "client:", "sip:nobody", "<script>"):
        problem(await stack.api.post(f"/v1/conferences/{room}/participants", json={"to": bad, "role": "agent"}),
                422, "invalid_address")
    problem(await stack.api.post(f"/v1/conferences/{room}/transfers",
                                 json={"kind": "cold", "from": "alice", "to": "client:b", "fallback_to": "nowhere"}),
            422, "invalid_address")
    problem(await stack.api.post(f"/v1/conferences/{room}/participants", json={"to": "client:x", "role": "boss"}),
            422, "invalid_request")
    assert len(await stack.rest_requests()) == before  # nothing reached Twilio


async def test_twilio_refusal_is_502_and_unreachable_is_503(stack: Stack) -> None:
    """Twilio's 4xx refusal is 502 twilio_error with Twilio's code; an outage is 503 twilio_unavailable, and a
    dial whose answer was lost is recorded as failed only once Twilio, reachable again, says it has no such leg."""
    room, _ = await live_call(stack)
    await stack.set_faults(rest_error_rate=1.0, rest_error_status=400)
    response = await stack.api.patch(f"/v1/conferences/{room}/participants/alice", json={"muted": True})
    problem(response, 502, "twilio_error")
    assert response.json()["twilio_code"]
    await stack.set_faults(rest_error_rate=1.0, rest_error_status=503)
    problem(await stack.api.post(f"/v1/conferences/{room}/participants", json={"to": "client:b", "role": "agent"}),
            503, "twilio_unavailable")
    types = [e["type"] for e in await stack.events(room)]
    assert "participant.dial_failed" not in types, "the dial's outcome is not known while Twilio is unreachable"
    await stack.set_faults(rest_error_rate=0.0)
    for _ in range(50):
        types = [e["type"] for e in await stack.events(room)]
        if "participant.dial_failed" in types:
            break
        await asyncio.sleep(0.1)
    # The intent is stored before the request, the refusal after.
    assert types.index("participant.update_requested") < types.index("command.failed")
    assert "participant.dial_failed" in types
    failed = (await stack.api.get(f"/v1/conferences/{room}/participants/agent-1")).json()
    assert failed["status"] == "failed"


async def test_scopes(stack: Stack) -> None:
    """`control` for agents and hold; `supervise` for supervisor legs and modes; `read` for GETs."""
    room, _ = await live_call(stack)
    reader, controller, supervisor = (stack.client_for(k) for k in ("reader", "controller", "supervisor"))
    problem(await reader.patch(f"/v1/conferences/{room}/participants/alice", json={"muted": True}), 403, "forbidden")
    problem(await controller.post(f"/v1/conferences/{room}/participants",
                                  json={"to": "client:s", "role": "supervisor"}), 403, "forbidden")
    assert (await supervisor.post(f"/v1/conferences/{room}/participants",
                                  json={"to": "client:s", "role": "supervisor", "label": "sue"})).status_code == 202
    await stack.settle()
    problem(await controller.patch(f"/v1/conferences/{room}/participants/sue", json={"mode": "barge"}), 403,
            "forbidden")
    assert (await controller.patch(f"/v1/conferences/{room}/participants/alice", json={"muted": True})).status_code \
        == 200
    problem(await stack.client_for(None).get(f"/v1/conferences/{room}"), 401, "unauthorized")


async def test_idempotent_repeat_does_nothing_twice(stack: Stack) -> None:
    """Same key and body: the first answer again and one dial; same key, other body: 422 idempotency_key_reused."""
    room, _ = await live_call(stack)
    body = {"to": "client:bob", "role": "agent", "label": "bob"}
    headers = {"Idempotency-Key": "add-bob-1"}
    first = await stack.api.post(f"/v1/conferences/{room}/participants", json=body, headers=headers)
    again = await stack.api.post(f"/v1/conferences/{room}/participants", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    await stack.settle()
    dials = [r for r in await stack.rest_requests() if r["operation"] == "CreateParticipant"]
    assert len(dials) == 2  # alice and bob, once
    problem(await stack.api.post(f"/v1/conferences/{room}/participants", json=body | {"label": "bobby"},
                                 headers=headers), 422, "idempotency_key_reused")


async def test_two_transfers_racing_one_wins(stack: Stack) -> None:
    """Two transfers at once on one conference: exactly one is accepted, the other gets 409 transfer_in_progress."""
    room, _ = await live_call(stack)
    responses = await asyncio.gather(*(
        stack.api.post(f"/v1/conferences/{room}/transfers", json={"kind": "warm", "from": "alice", "to": to})
        for to in ("client:bob", "client:carol")))
    assert sorted(r.status_code for r in responses) == [202, 409]
    problem(next(r for r in responses if r.status_code == 409), 409, "transfer_in_progress")
    await stack.settle()
    conference = (await stack.api.get(f"/v1/conferences/{room}")).json()
    assert len(conference["transfers"]) == 1
    await stack.assert_audibility_agrees(room)


async def test_idempotent_repeats_in_flight_wait_for_the_first_answer(stack: Stack) -> None:
    """The same key sent three times at once (a client retrying a slow request): one dial, three equal answers."""
    room, _ = await live_call(stack)
    body = {"to": "client:bob", "role": "agent", "label": "bob"}
    headers = {"Idempotency-Key": "add-bob-concurrent"}
    responses = await asyncio.gather(*(
        stack.api.post(f"/v1/conferences/{room}/participants", json=body, headers=headers) for _ in range(3)))
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert responses[0].json() == responses[1].json() == responses[2].json()
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 2
    await stack.settle()
    dials = [r for r in await stack.rest_requests() if r["operation"] == "CreateParticipant"]
    assert len(dials) == 2  # alice, and bob once


async def test_a_failed_request_frees_its_idempotency_key(stack: Stack) -> None:
    """A request that Twilio refused keeps no answer: the retry with the same key runs for real."""
    room, _ = await live_call(stack)
    headers = {"Idempotency-Key": "add-carol"}
    body = {"to": "client:carol", "role": "agent", "label": "carol"}
    await stack.set_faults(rest_error_rate=1.0, rest_error_status=400)
    problem(await stack.api.post(f"/v1/conferences/{room}/participants", json=body, headers=headers), 502,
            "twilio_error")
    await stack.set_faults(rest_error_rate=0.0)
    retry = await stack.api.post(f"/v1/conferences/{room}/participants", json=body, headers=headers)
    assert retry.status_code == 202 and "Idempotent-Replayed" not in retry.headers
    await stack.settle()
    assert (await stack.api.get(f"/v1/conferences/{room}/participants/carol")).json()["status"] == "joined"
