"""Twilio unreachable in the middle of a transition: the state says what should be, the outbox retries the
Twilio steps with backoff until Twilio answers, the API shows them as pending, and a repeat of the command
waits for them instead of being refused."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_hold_mute_supervision import live_call
from tests.e2e.test_transfers import start, transfer


async def until(check: Any, within_s: float = 10.0) -> None:
    """Wait until `check()` is true."""
    for _ in range(int(within_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not so after {within_s}s")


async def test_complete_with_twilio_unreachable_is_retried_until_done(stack: Stack) -> None:
    """`complete` while Twilio answers 503: 503 to the client, the transfer `completed` with `pending` steps
    (attempts and Twilio's error visible on the conference), a repeat is 503 again, not 409; once Twilio is back
    the customer is off hold with bob, alice is gone, and a repeat answers 200."""
    room, _ = await live_call(stack)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    await stack.settle()
    assert (await transfer(stack, started["id"]))["state"] == "consulting"

    await stack.set_faults(rest_error_rate=1.0, rest_error_status=503)
    first = await stack.api.post(f"/v1/transfers/{started['id']}/complete")
    assert first.status_code == 503 and first.json()["code"] == "twilio_unavailable", first.text
    seen = await transfer(stack, started["id"])
    assert seen["state"] == "completed" and seen["pending"] is True, seen
    pending = (await stack.conference(room))["pending_effects"]
    assert pending and pending[0]["kind"] == "update_participant" and pending[0]["label"] == "customer", pending
    assert pending[0]["attempts"] >= 1 and "503" in (pending[0]["last_error"] or ""), pending
    again = await stack.api.post(f"/v1/transfers/{started['id']}/complete")
    assert again.status_code == 503, f"a repeat while the steps are retried: {again.status_code} {again.text}"

    await stack.set_faults(rest_error_rate=0.0)
    retried = await stack.api.post(f"/v1/transfers/{started['id']}/complete")
    assert retried.status_code == 200 and retried.json()["state"] == "completed", retried.text
    await stack.settle()
    truth = await stack.ground_truth(room)
    connected = {p["label"]: p for p in truth["participants"]}
    assert set(connected) == {"customer", "bob"} and not connected["customer"]["hold"], truth
    assert (await transfer(stack, started["id"]))["pending"] is False
    assert (await stack.conference(room))["pending_effects"] == []
    await stack.assert_audibility_agrees(room)


async def test_a_hold_during_an_outage_reaches_twilio_when_it_is_back(stack: Stack) -> None:
    """A hold asked while Twilio answers 503 is 503 to the client but not forgotten: it reaches Twilio once
    Twilio answers again, and confctl and Twilio agree."""
    room, _ = await live_call(stack)
    await stack.set_faults(rest_error_rate=1.0, rest_error_status=503)
    held = await stack.api.patch(f"/v1/conferences/{room}/participants/alice", json={"hold": True})
    assert held.status_code == 503, held.text
    await stack.set_faults(rest_error_rate=0.0)

    async def held_at_twilio() -> bool:
        truth = await stack.ground_truth(room)
        return any(p["label"] == "alice" and p["hold"] for p in truth["participants"])

    await until(held_at_twilio)
    await stack.settle()
    assert (await stack.api.get(f"/v1/conferences/{room}/participants/alice")).json()["hold"] is True
    await stack.assert_audibility_agrees(room)
