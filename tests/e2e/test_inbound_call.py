"""Issue 3's acceptance: an inbound call through the simulator and confctl, end to end, in-process.

The simulator fetches confctl's voice URL, executes its TwiML and sends signed callbacks, which confctl
checks with its own signature checker; confctl's projection and who-hears-whom are compared with the
simulator's ground truth.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from twilio.rest import Client

from tests.e2e.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CONFERENCE_EVENTS,
    PUBLIC_URL,
    Stack,
    build_stack,
    sdk_http,
)


async def test_inbound_call_puts_the_customer_into_their_conference(stack: Stack) -> None:
    """An inbound call ends up in `room-{CallSid}` as `customer`, ending the conference on exit, on wait music."""
    call_sid, conference_id = await stack.inbound_call(from_="+15551230001", to="+15559990000")

    truth = await stack.ground_truth(conference_id)
    assert truth["friendly_name"] == f"room-{call_sid}"
    assert truth["status"] == "init"
    [customer] = truth["participants"]
    assert customer["call_sid"] == call_sid
    assert customer["label"] == "customer"
    assert customer["end_conference_on_exit"] is True
    assert (customer["muted"], customer["hold"]) == (False, False)
    assert await stack.sim_audibility(conference_id) == {"hears": {"customer": []}, "music": ["customer"]}

    ours = await stack.assert_projection_agrees(conference_id)
    assert ours["id"] == conference_id
    assert ours["twilio_sid"] == truth["sid"]
    assert ours["customer"] == {"call_sid": call_sid, "from": "+15551230001", "to": "+15559990000"}
    [participant] = ours["participants"]
    assert (participant["role"], participant["status"]) == ("customer", "joined")
    await stack.assert_audibility_agrees(conference_id)


async def test_simulator_callbacks_pass_confctls_signature_check_and_are_stored(stack: Stack) -> None:
    """Every voice request and callback the simulator signs is accepted, and what it reports is stored as twilio's."""
    call_sid, conference_id = await stack.inbound_call()

    sent = (await stack.sim.get("/simulator/callbacks")).json()
    assert [(hook["kind"], hook["status"]) for hook in sent] == [("voice", 200), ("conference-status", 204)]
    events = await stack.events(conference_id)
    assert [e["type"] for e in events] == ["conference.created", "participant.joined"]
    assert {e["actor"] for e in events} == {"twilio"}
    assert events[1]["data"]["call_sid"] == call_sid

    listed = (await stack.api.get("/v1/conferences")).json()["items"]
    assert [c["id"] for c in listed] == [conference_id]


async def test_callbacks_signed_with_another_auth_token_are_rejected(engine: AsyncEngine) -> None:
    """A simulator with another auth token gets 403 on the voice URL and on every callback, and nothing is stored."""
    async with build_stack(engine, sim_auth_token="not-confctls-token") as stack:
        _, conference_id = await stack.inbound_call()
        # A conference confctl would track, if the callbacks were genuine.
        sdk = Client(ACCOUNT_SID, "not-confctls-token", http_client=sdk_http(stack.simulator.app))
        await sdk.conferences(conference_id).participants.create_async(
            from_="+15550000000",
            to="client:agent-x",
            label="agent-x",
            conference_status_callback=f"{PUBLIC_URL}/twilio/conference-status",
            conference_status_callback_event=CONFERENCE_EVENTS,
        )
        await stack.settle()

        sent = (await stack.sim.get("/simulator/callbacks")).json()
        assert sent, "the simulator sent nothing"
        assert {hook["status"] for hook in sent} == {403}
        assert {hook["kind"] for hook in sent} >= {"voice", "conference-status"}
        assert (await stack.api.get("/v1/conferences")).json()["items"] == []
        assert (await stack.api.get(f"/v1/conferences/{conference_id}")).status_code == 404
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM events")) == 0
        assert await conn.scalar(sa.text("SELECT count(*) FROM dedupe_keys")) == 0


async def test_an_agent_added_straight_through_twilios_api_is_tracked(stack: Stack) -> None:
    """A leg confctl did not dial, added with the plain twilio SDK, is tracked as an agent and starts the call."""
    _, conference_id = await stack.inbound_call()
    conference_sid = (await stack.ground_truth(conference_id))["sid"]
    sdk = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk_http(stack.simulator.app))

    created = await sdk.conferences(conference_sid).participants.create_async(
        from_="+15550000000",
        to="client:agent-x",
        label="agent-x",
        conference_status_callback=f"{PUBLIC_URL}/twilio/conference-status",
        conference_status_callback_event=CONFERENCE_EVENTS,
    )
    await stack.settle()

    truth = await stack.ground_truth(conference_id)
    assert truth["status"] == "in-progress"
    assert {p["label"] for p in truth["participants"]} == {"customer", "agent-x"}
    ours = await stack.assert_projection_agrees(conference_id)
    agent = next(p for p in ours["participants"] if p["label"] == "agent-x")
    assert (agent["role"], agent["status"], agent["call_sid"]) == ("agent", "joined", created.call_sid)
    assert await stack.assert_audibility_agrees(conference_id) == {
        "hears": {"agent-x": ["customer"], "customer": ["agent-x"]},
        "music": [],
    }


async def test_hold_and_mute_made_on_twilio_are_reflected(stack: Stack) -> None:
    """Holding the customer and muting the agent straight on Twilio shows in confctl's projection and audibility."""
    customer_sid, conference_id = await stack.inbound_call()
    conference_sid = (await stack.ground_truth(conference_id))["sid"]
    sdk = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk_http(stack.simulator.app))
    participants = sdk.conferences(conference_sid).participants
    agent = await participants.create_async(
        from_="+15550000000",
        to="client:agent-x",
        label="agent-x",
        conference_status_callback=f"{PUBLIC_URL}/twilio/conference-status",
        conference_status_callback_event=CONFERENCE_EVENTS,
    )
    await stack.settle()

    await sdk.conferences(conference_sid).participants(customer_sid).update_async(hold=True)
    await sdk.conferences(conference_sid).participants(agent.call_sid).update_async(muted=True)
    await stack.settle()

    ours = await stack.assert_projection_agrees(conference_id)
    flags = {p["label"]: (p["muted"], p["hold"]) for p in ours["participants"]}
    assert flags == {"customer": (False, True), "agent-x": (True, False)}
    assert await stack.assert_audibility_agrees(conference_id) == {
        "hears": {"agent-x": [], "customer": []},
        "music": ["customer"],
    }
