"""Hold, mute and supervision end to end: confctl + embedded PostgreSQL + the simulator, under each delivery mode."""

from __future__ import annotations

from typing import Any

from twilio.rest import Client

from tests.e2e.conftest import Stack, every_delivery_mode
from tests.e2e.support import ACCOUNT_SID, AUTH_TOKEN, sdk_http
from tests.e2e.support import _swallow_webhooks as swallow_webhooks

pytestmark = every_delivery_mode


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


# --- whom a coach whispers to, when Twilio's callbacks never say -----------------------------------------


async def coaching_callbacks(stack: Stack) -> list[dict[str, Any]]:
    """The conference callbacks the simulator sent with Coaching=true; none names whom (as Twilio's do not)."""
    log = (await stack.sim.get("/simulator/callbacks")).json()
    forms = [entry["params"] for entry in log if "StatusCallbackEvent" in entry["params"]]
    assert forms and not any("CallSidToCoach" in form for form in forms)
    return [form for form in forms if form.get("Coaching") == "true"]


async def add(stack: Stack, room: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await stack.api.post(f"/v1/conferences/{room}/participants", json=body)
    assert response.status_code == 202, response.text
    await stack.settle()
    result: dict[str, Any] = response.json()
    return result


async def test_coaching_is_heard_right_though_callbacks_never_name_the_coached_call(stack: Stack) -> None:
    """Dialed in as coach, switched to another agent, back to monitor and to coach: only the coached agent hears
    sue at every step, though no callback carries CallSidToCoach (confctl keeps it from its requests and
    Twilio's REST answers)."""
    room, _ = await live_call(stack)
    await add(stack, room, {"to": "client:bob", "role": "agent", "label": "bob"})
    await add(stack, room, {"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "coach",
                            "coach": "alice"})
    assert len(await coaching_callbacks(stack)) >= 1  # sue's join said Coaching=true, and not whom
    hears = (await stack.assert_audibility_agrees(room))["hears"]
    assert "sue" in hears["alice"] and "sue" not in hears["bob"] and "sue" not in hears["customer"]
    sue = (await stack.api.get(f"/v1/conferences/{room}/participants/sue")).json()
    assert (sue["mode"], sue["coach"]) == ("coach", "alice")

    to_bob = await patch(stack, room, "sue", {"coach": "bob"})
    assert (to_bob["mode"], to_bob["coach"]) == ("coach", "bob")
    hears = (await stack.assert_audibility_agrees(room))["hears"]
    assert "sue" in hears["bob"] and "sue" not in hears["alice"]

    await patch(stack, room, "sue", {"mode": "monitor"})
    await stack.assert_audibility_agrees(room)
    again = await patch(stack, room, "sue", {"mode": "coach", "coach": "alice"})
    assert (again["mode"], again["coach"]) == ("coach", "alice")
    hears = (await stack.assert_audibility_agrees(room))["hears"]
    assert "sue" in hears["alice"] and "sue" not in hears["bob"]
    await coaching_callbacks(stack)


async def test_sync_keeps_the_coached_call_and_repairs_a_drift_of_it(stack: Stack) -> None:
    """A sync with nothing drifted leaves coaching as it was; when sue was switched to bob on Twilio itself (its
    callbacks lost), sync stores the correction and audibility agrees with Twilio again."""
    room, _ = await live_call(stack)
    bob = await add(stack, room, {"to": "client:bob", "role": "agent", "label": "bob"})
    await add(stack, room, {"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "coach",
                            "coach": "alice"})
    first = (await stack.api.post(f"/v1/conferences/{room}/sync")).json()
    assert first["corrections"] == []
    await stack.assert_audibility_agrees(room)

    bob_sid = (await stack.api.get(f"/v1/conferences/{room}/participants/bob")).json()["call_sid"]
    assert bob["label"] == "bob" and bob_sid
    conference_sid = (await stack.ground_truth(room))["sid"]
    stack.confctl.app = swallow_webhooks
    try:
        sdk = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk_http(stack.simulator.app))
        await sdk.conferences(conference_sid).participants("sue").update_async(coaching=True,
                                                                               call_sid_to_coach=bob_sid)
        await stack.settle()
    finally:
        stack.confctl.app = stack.app
    response = await stack.api.post(f"/v1/conferences/{room}/sync")
    assert response.status_code == 200, response.text
    assert response.json()["corrections"] == ["sue coaches bob"]
    sue = next(p for p in response.json()["conference"]["participants"] if p["label"] == "sue")
    assert (sue["mode"], sue["coach"]) == ("coach", "bob")
    hears = (await stack.assert_audibility_agrees(room))["hears"]
    assert "sue" in hears["bob"] and "sue" not in hears["alice"]
    assert any(e["type"] == "participant.corrected" for e in await stack.events(room))
    assert (await stack.api.post(f"/v1/conferences/{room}/sync")).json()["corrections"] == []


async def test_coaching_an_agent_on_hold_is_refused_before_twilio_is_asked(stack: Stack) -> None:
    """Twilio's 16027, checked first: dialing a coach for a held agent, or switching to coach them, is
    409 coach_target_on_hold and sends Twilio nothing; holding the agent a supervisor coaches is allowed."""
    room, _ = await live_call(stack)
    await add(stack, room, {"to": "client:sue", "role": "supervisor", "label": "sue"})
    await patch(stack, room, "alice", {"hold": True})
    before = len(await stack.rest_requests())
    dial = await stack.api.post(f"/v1/conferences/{room}/participants",
                                json={"to": "client:tom", "role": "supervisor", "mode": "coach", "coach": "alice"})
    switch = await stack.api.patch(f"/v1/conferences/{room}/participants/sue", json={"mode": "coach", "coach": "alice"})
    for refused in (dial, switch):
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "coach_target_on_hold"
    assert len(await stack.rest_requests()) == before

    await patch(stack, room, "alice", {"hold": False})
    await patch(stack, room, "sue", {"mode": "coach", "coach": "alice"})
    held = await patch(stack, room, "alice", {"hold": True})
    assert held["hold"] is True
    await stack.assert_audibility_agrees(room)


async def test_coaching_without_agent_conference_says_what_to_enable(stack: Stack) -> None:
    """With the account's Agent Conference off, Twilio refuses coaching (16000): a 502 twilio_error whose detail
    tells the operator to enable Agent Conference in the Twilio Console."""
    room, _ = await live_call(stack)
    await add(stack, room, {"to": "client:sue", "role": "supervisor", "label": "sue"})
    assert (await stack.sim.put("/simulator/account", json={"agent_conference": False})).status_code == 200
    dial = await stack.api.post(f"/v1/conferences/{room}/participants",
                                json={"to": "client:tom", "role": "supervisor", "mode": "coach", "coach": "alice"})
    switch = await stack.api.patch(f"/v1/conferences/{room}/participants/sue", json={"mode": "coach", "coach": "alice"})
    for refused in (dial, switch):
        assert refused.status_code == 502, refused.text
        body = refused.json()
        assert (body["code"], body["twilio_code"]) == ("twilio_error", 16000)
        assert "Agent Conference" in body["detail"] and "Twilio Console" in body["detail"]
    await stack.settle()
    await stack.assert_audibility_agrees(room)


async def test_sync_during_a_ringing_transfer_leaves_the_target_ringing(stack: Stack) -> None:
    """Twilio's Participants list holds the ringing target too: sync takes it for no joined leg, so the transfer
    stays dialing, nothing is corrected, and the target goes on ringing."""
    room, _ = await live_call(stack)
    await stack.set_directory("client:bob", "answer", after_s=1000)
    response = await stack.api.post(f"/v1/conferences/{room}/transfers",
                                    json={"kind": "warm", "from": "alice", "to": "client:bob", "label": "bob"})
    assert response.status_code == 202, response.text
    await stack.settle(until_quiet=False)
    synced = await stack.api.post(f"/v1/conferences/{room}/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json()["corrections"] == []
    bob = (await stack.api.get(f"/v1/conferences/{room}/participants/bob")).json()
    assert bob["status"] in ("dialing", "ringing")
    assert (await stack.api.get(f"/v1/transfers/{response.json()['id']}")).json()["state"] == "dialing"
    assert (await stack.sim_call(bob["call_sid"]))["status"] == "ringing"
