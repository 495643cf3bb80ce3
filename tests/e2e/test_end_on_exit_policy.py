"""The end-on-exit policy: a transfer survives its agent leaving, even an agent that joined with end-on-exit set."""

from __future__ import annotations

from twilio.rest import Client

from tests.e2e.conftest import Stack
from tests.e2e.support import ACCOUNT_SID, AUTH_TOKEN, CONFERENCE_EVENTS, PUBLIC_URL, sdk_http


async def test_agent_joined_elsewhere_with_end_on_exit_leaving_mid_transfer_does_not_end_the_call(
    stack: Stack,
) -> None:
    """An agent added outside confctl with EndConferenceOnExit=true hands over and hangs up mid-consult:
    its flag was cleared before the customer was held, so the customer stays, now with the target."""
    _, room = await stack.inbound_call()
    conference_sid = (await stack.ground_truth(room))["sid"]
    sdk = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk_http(stack.simulator.app))
    agent = await sdk.conferences(conference_sid).participants.create_async(
        from_="+15550000000", to="client:flex-agent", label="agent-flex", end_conference_on_exit=True,
        conference_status_callback=f"{PUBLIC_URL}/twilio/conference-status",
        conference_status_callback_event=CONFERENCE_EVENTS,
    )
    await stack.settle()
    truth = await stack.ground_truth(room)
    assert next(p for p in truth["participants"] if p["label"] == "agent-flex")["end_conference_on_exit"] is True

    response = await stack.api.post(f"/v1/conferences/{room}/transfers",
                                    json={"kind": "warm", "from": "agent-flex", "to": "client:bob", "label": "bob"})
    assert response.status_code == 202, response.text
    await stack.settle()
    truth = await stack.ground_truth(room)
    flags = {p["label"]: (p["end_conference_on_exit"], p["hold"]) for p in truth["participants"]}
    assert flags == {"customer": (True, True), "agent-flex": (False, False), "bob": (False, False)}

    await stack.hang_up(agent.call_sid)
    assert (await stack.ground_truth(room))["status"] == "in-progress"
    transfer = (await stack.api.get(f"/v1/transfers/{response.json()['id']}")).json()
    assert transfer["state"] == "completed"
    assert await stack.assert_audibility_agrees(room) == {"hears": {"bob": ["customer"], "customer": ["bob"]},
                                                          "music": []}


async def test_a_call_with_only_a_supervisor_left_is_ended(stack: Stack) -> None:
    """When the agent leaves a call with the customer gone and only a supervisor left, confctl ends it."""
    _, room = await stack.inbound_call()
    await stack.api.post(f"/v1/conferences/{room}/participants", json={"to": "client:al", "role": "agent",
                                                                        "label": "al"})
    await stack.settle()
    await stack.api.post(f"/v1/conferences/{room}/participants", json={"to": "client:sue", "role": "supervisor",
                                                                        "label": "sue", "mode": "barge"})
    await stack.settle()
    await stack.api.delete(f"/v1/conferences/{room}/participants/al")
    await stack.settle()
    # Customer and supervisor remain: the call goes on.
    assert (await stack.ground_truth(room))["status"] == "in-progress"
    sdk = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk_http(stack.simulator.app))
    conference_sid = (await stack.ground_truth(room))["sid"]
    # The customer's end-on-exit is cleared behind confctl's back, then the customer leaves: only sue is left.
    await sdk.conferences(conference_sid).participants("customer").update_async(end_conference_on_exit=False)
    await stack.settle()
    customer = (await stack.api.get(f"/v1/conferences/{room}/participants/customer")).json()
    await stack.hang_up(customer["call_sid"])
    assert (await stack.ground_truth(room))["status"] == "completed"
    assert (await stack.api.get(f"/v1/conferences/{room}")).json()["status"] == "completed"
