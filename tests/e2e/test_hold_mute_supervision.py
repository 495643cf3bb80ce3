"""Hold, mute and supervision end to end: confctl + embedded PostgreSQL + the simulator."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Stack


async def live_call(stack: Stack) -> tuple[str, str]:
    """An inbound customer talking with agent `alice`; returns (conference id, customer CallSid)."""
    call_sid, room = await stack.inbound_call()
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": "client:alice", "role": "agent", "label": "alice"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "dialing"
    await stack.settle()
    conference = (await stack.api.get(f"/v1/conferences/{room}")).json()
    assert conference["status"] == "in-progress"
    return room, call_sid


async def patch(stack: Stack, room: str, label: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await stack.api.patch(f"/v1/conferences/{room}/participants/{label}", json=body)
    assert response.status_code == 200, response.text
    await stack.settle()
    result: dict[str, Any] = response.json()
    return result


async def test_hold_is_not_mute(stack: Stack) -> None:
    """A held customer hears music and nobody hears them; a muted agent still hears everyone."""
    room, _ = await live_call(stack)
    await stack.assert_audibility_agrees(room)

    held = await patch(stack, room, "customer", {"hold": True})
    assert held["hold"] is True and held["muted"] is False
    assert await stack.our_audibility(room) == {"hears": {"alice": [], "customer": []}, "music": ["customer"]}
    await stack.assert_audibility_agrees(room)

    await patch(stack, room, "customer", {"hold": False})
    muted = await patch(stack, room, "alice", {"muted": True})
    assert muted["muted"] is True and muted["hold"] is False
    assert await stack.our_audibility(room) == {"hears": {"alice": ["customer"], "customer": []}, "music": []}
    await stack.assert_audibility_agrees(room)
    truth = await stack.ground_truth(room)
    alice = next(p for p in truth["participants"] if p["label"] == "alice")
    assert alice["muted"] is True and alice["hold"] is False


async def test_hold_music_url_reaches_twilio(stack: Stack) -> None:
    """hold_music_url is sent to Twilio as the held leg's HoldUrl."""
    room, _ = await live_call(stack)
    await patch(stack, room, "customer", {"hold": True, "hold_music_url": "https://music.example.com/jazz.mp3"})
    updates = [r for r in await stack.rest_requests() if r["operation"] == "UpdateParticipant"]
    assert any(r["form"].get("HoldUrl") == ["https://music.example.com/jazz.mp3"] for r in updates)


async def test_supervisor_modes_switch_live_on_one_leg(stack: Stack) -> None:
    """Monitor, coach (the customer never hears the coach, the agent does) and barge, switched on one leg."""
    room, _ = await live_call(stack)
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": "client:sue", "role": "supervisor", "label": "sue"})
    assert response.status_code == 202 and response.json()["mode"] == "monitor"
    await stack.settle()
    sue = (await stack.api.get(f"/v1/conferences/{room}/participants/sue")).json()
    assert sue["status"] == "joined" and sue["mode"] == "monitor" and sue["muted"] is True
    leg = sue["call_sid"]
    assert await stack.our_audibility(room) == {
        "hears": {"alice": ["customer"], "customer": ["alice"], "sue": ["alice", "customer"]}, "music": []}
    await stack.assert_audibility_agrees(room)

    coach = await patch(stack, room, "sue", {"mode": "coach", "coach": "alice"})
    assert (coach["mode"], coach["coach"], coach["coaching"], coach["call_sid"]) == ("coach", "alice", True, leg)
    hears = (await stack.our_audibility(room))["hears"]
    assert "sue" in hears["alice"] and "sue" not in hears["customer"]
    await stack.assert_audibility_agrees(room)

    barge = await patch(stack, room, "sue", {"mode": "barge"})
    assert (barge["mode"], barge["coaching"], barge["muted"], barge["call_sid"]) == ("barge", False, False, leg)
    hears = (await stack.our_audibility(room))["hears"]
    assert "sue" in hears["alice"] and "sue" in hears["customer"]
    await stack.assert_audibility_agrees(room)

    back = await patch(stack, room, "sue", {"mode": "monitor"})
    assert (back["mode"], back["call_sid"]) == ("monitor", leg)
    await stack.assert_audibility_agrees(room)
    dials = [r for r in await stack.rest_requests() if r["operation"] == "CreateParticipant"]
    assert len(dials) == 2  # alice and sue: switching modes never redials


async def test_coaching_supervisor_dialed_straight_into_coach_mode(stack: Stack) -> None:
    """A supervisor added in mode coach whispers to the agent only from the start."""
    room, _ = await live_call(stack)
    response = await stack.api.post(f"/v1/conferences/{room}/participants",
                                    json={"to": "client:sue", "role": "supervisor", "mode": "coach",
                                          "coach": "alice"})
    assert response.status_code == 202, response.text
    await stack.settle()
    assert await stack.our_audibility(room) == {
        "hears": {"alice": ["customer", "supervisor-1"], "customer": ["alice"],
                  "supervisor-1": ["alice", "customer"]}, "music": []}
    await stack.assert_audibility_agrees(room)


async def test_remove_participant_and_end_conference(stack: Stack) -> None:
    """DELETE takes one leg out; end ends every leg, and the conference is completed."""
    room, customer = await live_call(stack)
    await stack.api.post(f"/v1/conferences/{room}/participants", json={"to": "client:bob", "role": "agent",
                                                                        "label": "bob"})
    await stack.settle()
    response = await stack.api.delete(f"/v1/conferences/{room}/participants/bob")
    assert response.status_code == 202
    await stack.settle()
    bob = (await stack.api.get(f"/v1/conferences/{room}/participants/bob")).json()
    assert bob["status"] == "left"
    await stack.assert_audibility_agrees(room)
    assert (await stack.api.post(f"/v1/conferences/{room}/end")).status_code == 202
    await stack.settle()
    conference = (await stack.api.get(f"/v1/conferences/{room}")).json()
    assert conference["status"] == "completed"
    assert {p["status"] for p in conference["participants"]} == {"left"}
    assert (await stack.ground_truth(room))["status"] == "completed"
    events = (await stack.api.get(f"/v1/conferences/{room}/events", params={"limit": 1000})).json()["items"]
    commands = [e for e in events if e["type"] in ("participant.dial_requested", "conference.end_requested",
                                                   "participant.removal_requested")]
    assert commands and {e["actor"] for e in commands} == {"admin"}  # the API key's name is the actor
    assert customer


async def test_sync_repairs_drift_from_twilio(stack: Stack) -> None:
    """A change made on Twilio behind confctl's back is found by sync and stored as a correction."""
    room, _ = await live_call(stack)
    await stack.hide_callbacks_and_hold_directly(room, "alice")
    response = await stack.api.post(f"/v1/conferences/{room}/sync")
    assert response.status_code == 200, response.text
    body = response.json()
    assert any("alice" in c for c in body["corrections"])
    alice = next(p for p in body["conference"]["participants"] if p["label"] == "alice")
    assert alice["hold"] is True
    again = (await stack.api.post(f"/v1/conferences/{room}/sync")).json()
    assert again["corrections"] == []
