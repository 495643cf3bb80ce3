"""Warm and cold transfers end to end, every failure path included, audibility checked against Twilio.

Every test runs under each of the simulator's delivery modes (in order, concurrent, early).
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Stack, every_delivery_mode
from tests.e2e.test_hold_mute_supervision import live_call

pytestmark = every_delivery_mode


async def start(stack: Stack, room: str, **body: Any) -> dict[str, Any]:
    response = await stack.api.post(f"/v1/conferences/{room}/transfers", json={"from": "alice", **body})
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def transfer(stack: Stack, transfer_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await stack.api.get(f"/v1/transfers/{transfer_id}")).json()
    return result


async def leg(stack: Stack, room: str, label: str) -> dict[str, Any]:
    result: dict[str, Any] = (await stack.api.get(f"/v1/conferences/{room}/participants/{label}")).json()
    return result


async def test_warm_transfer_happy_path(stack: Stack) -> None:
    """Customer on hold hears only music while alice consults bob; complete hands the customer to bob."""
    room, _ = await live_call(stack)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    assert started["state"] == "dialing" and started["target_call_sid"]  # as accepted; progress is on the events
    assert started["from"] == "alice" and started["target_label"] == "bob"
    await stack.settle()
    assert (await transfer(stack, started["id"]))["state"] == "consulting"
    assert await stack.our_audibility(room) == {
        "hears": {"alice": ["bob"], "bob": ["alice"], "customer": []}, "music": ["customer"]}
    await stack.assert_audibility_agrees(room)

    done = await stack.api.post(f"/v1/transfers/{started['id']}/complete")
    assert done.status_code == 200 and done.json()["state"] == "completed"
    await stack.settle()
    assert await stack.our_audibility(room) == {"hears": {"bob": ["customer"], "customer": ["bob"]}, "music": []}
    await stack.assert_audibility_agrees(room)
    assert (await leg(stack, room, "alice"))["status"] == "left"
    final = await transfer(stack, started["id"])
    assert final["ended_at"] and final["target_call_sid"]


async def test_warm_transfer_cancel(stack: Stack) -> None:
    """Cancel during the consult: bob's leg ends and the customer is back with alice."""
    room, _ = await live_call(stack)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    await stack.settle()
    cancelled = await stack.api.post(f"/v1/transfers/{started['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    await stack.settle()
    assert (await leg(stack, room, "bob"))["status"] == "left"
    assert await stack.our_audibility(room) == {"hears": {"alice": ["customer"], "customer": ["alice"]}, "music": []}
    await stack.assert_audibility_agrees(room)


async def test_warm_transfer_cancel_while_ringing(stack: Stack) -> None:
    """Cancel before the target answers: the ringing leg is hung up, the customer is back with alice."""
    room, _ = await live_call(stack)
    await stack.set_directory("client:bob", "answer", after_s=1000)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    await stack.settle(until_quiet=False)
    cancelled = await stack.api.post(f"/v1/transfers/{started['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    await stack.settle()
    bob = await leg(stack, room, "bob")
    assert bob["status"] in ("failed", "left")
    call = await stack.sim_call(bob["call_sid"])
    assert call["status"] == "canceled"
    await stack.assert_audibility_agrees(room)


async def test_warm_target_busy_or_no_answer_fails_back_to_alice(stack: Stack) -> None:
    """Busy and no-answer fail the transfer and take the customer off hold with alice."""
    for behavior, address in (("busy", "client:busy-bob"), ("no-answer", "client:away-bob")):
        room, _ = await live_call(stack)
        await stack.set_directory(address, behavior)
        started = await start(stack, room, kind="warm", to=address, label="bob")
        await stack.settle()
        failed = await transfer(stack, started["id"])
        assert failed["state"] == "failed" and failed["failure_reason"] == behavior, failed
        assert await stack.our_audibility(room) == {
            "hears": {"alice": ["customer"], "customer": ["alice"]}, "music": []}
        await stack.assert_audibility_agrees(room)


async def test_transferring_agent_hangs_up_mid_consult(stack: Stack) -> None:
    """alice hangs up during the consult: the transfer completes and the customer is with bob (call not ended)."""
    room, _ = await live_call(stack)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    await stack.settle()
    await stack.hang_up((await leg(stack, room, "alice"))["call_sid"])
    assert (await transfer(stack, started["id"]))["state"] == "completed"
    conference = (await stack.api.get(f"/v1/conferences/{room}")).json()
    assert conference["status"] == "in-progress"
    assert await stack.our_audibility(room) == {"hears": {"bob": ["customer"], "customer": ["bob"]}, "music": []}
    await stack.assert_audibility_agrees(room)


async def test_customer_hangs_up_mid_consult(stack: Stack) -> None:
    """The customer hangs up during the consult: cancelled, and the target's joined leg is ended."""
    room, customer = await live_call(stack)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    await stack.settle()
    await stack.hang_up(customer)
    final = await transfer(stack, started["id"])
    assert final["state"] == "cancelled" and final["failure_reason"] == "customer_left"
    assert (await leg(stack, room, "bob"))["status"] == "left"
    assert (await stack.ground_truth(room))["status"] == "completed"


async def test_customer_hangs_up_while_target_rings(stack: Stack) -> None:
    """The customer hangs up while the target still rings: cancelled, and the ringing call is hung up."""
    room, customer = await live_call(stack)
    await stack.set_directory("client:bob", "answer", after_s=1000)
    started = await start(stack, room, kind="warm", to="client:bob", label="bob")
    await stack.settle(until_quiet=False)
    await stack.hang_up(customer)
    assert (await transfer(stack, started["id"]))["state"] == "cancelled"
    bob = await leg(stack, room, "bob")
    assert (await stack.sim_call(bob["call_sid"]))["status"] == "canceled"


async def test_cold_transfer_happy_path(stack: Stack) -> None:
    """Cold: alice leaves at once, the customer waits on hold music, then is with carol."""
    room, _ = await live_call(stack)
    await stack.set_directory("+15557654321", "answer", after_s=50)
    started = await start(stack, room, kind="cold", to="+15557654321", label="carol", target_role="external")
    await stack.settle(until_quiet=False)
    assert (await leg(stack, room, "alice"))["status"] == "left"
    assert (await leg(stack, room, "carol"))["status"] in ("dialing", "ringing")
    assert await stack.our_audibility(room) == {"hears": {"customer": []}, "music": ["customer"]}
    await stack.assert_audibility_agrees(room)
    await stack.settle()  # carol answers after her ring
    assert (await transfer(stack, started["id"]))["state"] == "completed"
    assert await stack.our_audibility(room) == {"hears": {"carol": ["customer"], "customer": ["carol"]},
                                                "music": []}
    await stack.assert_audibility_agrees(room)


async def test_cold_transfer_failure_dials_the_fallback(stack: Stack) -> None:
    """Cold: the target is busy, fallback_to is dialed and the customer ends up with it."""
    room, _ = await live_call(stack)
    await stack.set_directory("client:bob", "busy")
    started = await start(stack, room, kind="cold", to="client:bob", label="bob", fallback_to="client:queue")
    await stack.settle()
    final = await transfer(stack, started["id"])
    assert final["state"] == "completed" and final["to"] == "client:queue"
    hears = (await stack.our_audibility(room))["hears"]
    assert hears["customer"] == [final["target_label"]]
    await stack.assert_audibility_agrees(room)
    events = [e["type"] for e in (await stack.api.get(f"/v1/conferences/{room}/events",
                                                      params={"limit": 1000})).json()["items"]]
    assert "transfer.fallback_dialed" in events


async def test_cold_transfer_failure_without_fallback_leaves_customer_on_music(stack: Stack) -> None:
    """Cold: the target fails and there is no fallback: failed, the customer hears hold music, never silence."""
    room, _ = await live_call(stack)
    await stack.set_directory("client:bob", "failed")
    started = await start(stack, room, kind="cold", to="client:bob", label="bob")
    await stack.settle()
    final = await transfer(stack, started["id"])
    assert final["state"] == "failed" and final["failure_reason"] == "failed"
    assert await stack.our_audibility(room) == {"hears": {"customer": []}, "music": ["customer"]}
    await stack.assert_audibility_agrees(room)
    events = [e["type"] for e in (await stack.api.get(f"/v1/conferences/{room}/events",
                                                      params={"limit": 1000})).json()["items"]]
    assert "transfer.failed" in events


async def test_a_cold_transfer_cannot_be_cancelled(stack: Stack) -> None:
    """Cold: alice left at once, so a cancel would leave the customer alone on music: 409 invalid_transition,
    nothing sent to Twilio, and the transfer still completes when carol answers."""
    room, _ = await live_call(stack)
    await stack.set_directory("+15557654321", "answer", after_s=50)
    started = await start(stack, room, kind="cold", to="+15557654321", label="carol", target_role="external")
    await stack.settle(until_quiet=False)
    before = len(await stack.rest_requests())
    refused = await stack.api.post(f"/v1/transfers/{started['id']}/cancel")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition", refused.text
    assert len(await stack.rest_requests()) == before
    await stack.settle()
    assert (await transfer(stack, started["id"]))["state"] == "completed"
    await stack.assert_audibility_agrees(room)
