"""Callbacks as Twilio sends them: signed, numbered, timestamped, only the subscribed events."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime

import httpx
import pytest

from confctl.simulator import Simulator
from tests.simulator.conftest import HOOKS, Recorder, api, dial, inbound, truth

ALL_CALL_EVENTS = "initiated ringing answered completed"


async def test_callbacks_are_signed_numbered_and_timestamped(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """Every request carries a valid X-Twilio-Signature; conference events count up from 1 with RFC 2822 times."""
    _, conference = await inbound(client, sim)
    await dial(
        client,
        conference,
        "client:agent",
        "agent",
        StatusCallback=f"{HOOKS}/twilio/call-status",
        StatusCallbackEvent=ALL_CALL_EVENTS,
    )
    await sim.settle()
    assert recorder.hooks
    assert all(hook.signature_valid for hook in recorder.hooks)
    assert all(hook.headers["content-type"] == "application/x-www-form-urlencoded" for hook in recorder.hooks)
    events = recorder.conference_events(conference)
    assert [int(e["SequenceNumber"]) for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert parsedate_to_datetime(event["Timestamp"]).utcoffset() is not None
        assert event["FriendlyName"].startswith("room-")
        assert event["AccountSid"].startswith("AC")
    join = events[0]
    assert {k: join[k] for k in ("Muted", "Hold", "Coaching", "EndConferenceOnExit", "StartConferenceOnEnter")} == {
        "Muted": "false",
        "Hold": "false",
        "Coaching": "false",
        "EndConferenceOnExit": "false",
        "StartConferenceOnEnter": "true",
    }


async def test_call_status_sequence_starts_at_zero_per_call(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """Each call numbers its own progress events from 0, with the documented fields on completed."""
    _, conference = await inbound(client, sim)
    sids = []
    for label in ("a", "b"):
        created = await dial(
            client,
            conference,
            f"client:{label}",
            label,
            StatusCallback=f"{HOOKS}/twilio/call-status",
            StatusCallbackEvent=ALL_CALL_EVENTS,
        )
        sids.append(created.json()["call_sid"])
    await sim.settle()
    await client.post(api(f"/Conferences/{conference}.json"), data={"Status": "completed"})
    await sim.settle()
    for sid in sids:
        events = recorder.call_events(sid)
        assert [e["CallStatus"] for e in events] == ["initiated", "ringing", "in-progress", "completed"]
        assert [e["SequenceNumber"] for e in events] == ["0", "1", "2", "3"]
        assert all(e["CallbackSource"] == "call-progress-events" for e in events)
        assert all(e["Direction"] == "outbound-api" and e["ApiVersion"] == "2010-04-01" for e in events)
        assert "ParentCallSid" not in events[0]
        completed = events[-1]
        assert {"CallDuration", "Duration", "SipResponseCode"} <= set(completed)
        assert completed["SipResponseCode"] == "200"
        assert "CallDuration" not in events[0]


async def test_only_completed_by_default(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """Without StatusCallbackEvent only `completed` is sent; without a conference subscription, start and end."""
    await dial(
        client,
        "room-d",
        "client:a",
        "a",
        StatusCallback=f"{HOOKS}/twilio/call-status",
        ConferenceStatusCallback=f"{HOOKS}/twilio/conference-status",
    )
    created = await dial(client, "room-d", "client:b", "b")
    await sim.settle()
    conference = created.json()["conference_sid"]
    await client.post(api(f"/Conferences/{conference}.json"), data={"Status": "completed"})
    await sim.settle()
    assert [e["CallStatus"] for e in recorder.at("/twilio/call-status")] == ["completed"]
    assert recorder.event_names(conference) == ["conference-start", "conference-end"]


@pytest.mark.parametrize(
    ("behavior", "status", "sip"),
    [("busy", "busy", "486"), ("no-answer", "no-answer", "487"), ("failed", "failed", "404")],
)
async def test_directory_outcomes(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder, behavior: str, status: str, sip: str
) -> None:
    """A busy, unanswered or failing address ends the call in that status; the participant leaves with it."""
    _, conference = await inbound(client, sim)
    address = f"client:{behavior}"
    put = await client.put(f"/simulator/directory/{address}", json={"behavior": behavior, "after_s": 1})
    assert put.json() == {"address": address, "behavior": behavior, "after_s": 1.0}
    created = await dial(
        client,
        conference,
        address,
        "target",
        StatusCallback=f"{HOOKS}/twilio/call-status",
        StatusCallbackEvent=ALL_CALL_EVENTS,
        Timeout="30",
    )
    call_sid = created.json()["call_sid"]
    await sim.settle()
    fetched = (await client.get(api(f"/Calls/{call_sid}.json"))).json()
    assert fetched["status"] == status
    events = recorder.call_events(call_sid)
    assert events[-1]["CallStatus"] == status
    assert events[-1]["SipResponseCode"] == sip
    assert "in-progress" not in [e["CallStatus"] for e in events]
    leave = recorder.conference_events(conference)[-1]
    assert leave["StatusCallbackEvent"] == "participant-leave"
    assert leave["CallSid"] == call_sid
    assert (leave["ParticipantCallStatus"], leave["ReasonParticipantLeft"]) == (status, "participant_add_failed")
    assert (await truth(client, conference))["status"] == "init"  # the customer is still waiting


async def test_ring_timeout_gives_no_answer(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """An address that answers after the participant's Timeout ends in no-answer at the timeout."""
    _, conference = await inbound(client, sim)
    await client.put("/simulator/directory/client:slow", json={"behavior": "answer", "after_s": 20})
    created = await dial(
        client, conference, "client:slow", "slow", Timeout="5", StatusCallback=f"{HOOKS}/twilio/call-status"
    )
    await sim.settle()
    assert recorder.call_events(created.json()["call_sid"])[-1]["CallStatus"] == "no-answer"


async def test_get_method_callbacks_carry_params_in_the_query(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """With StatusCallbackMethod=GET the parameters travel in the query string, and the URL is signed."""
    await dial(client, "room-g", "client:a", "a", StatusCallback=f"{HOOKS}/cb?x=1", StatusCallbackMethod="GET")
    await sim.settle()
    created = (await client.get(api("/Conferences.json"), params={"FriendlyName": "room-g"})).json()
    await client.post(api(f"/Conferences/{created['conferences'][0]['sid']}.json"), data={"Status": "completed"})
    await sim.settle()
    (hook,) = [h for h in recorder.hooks if h.path == "/cb"]
    assert hook.method == "GET"
    assert hook.signature_valid
    assert hook.params["x"] == "1"
    assert hook.params["CallStatus"] == "completed"


async def test_cancel_while_queued_sends_no_call_callback(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A call canceled before it leaves the queue fires no status callback; canceled while ringing, one."""
    queued = await client.post(
        api("/Calls.json"),
        data={"To": "client:q", "From": "+1", "Twiml": "<Response/>", "StatusCallback": f"{HOOKS}/cs"},
    )
    await client.post(api(f"/Calls/{queued.json()['sid']}.json"), data={"Status": "canceled"})
    await client.put("/simulator/directory/client:r", json={"behavior": "no-answer"})
    ringing = await client.post(
        api("/Calls.json"),
        data={
            "To": "client:r",
            "From": "+1",
            "Twiml": "<Response/>",
            "StatusCallback": f"{HOOKS}/cs",
            "StatusCallbackEvent": "ringing completed",
        },
    )
    for _ in range(1000):  # bounded wait for the leg to start ringing (it rings until its Timeout)
        if (await client.get(api(f"/Calls/{ringing.json()['sid']}.json"))).json()["status"] == "ringing":
            break
        await asyncio.sleep(0.001)
    await client.post(api(f"/Calls/{ringing.json()['sid']}.json"), data={"Status": "canceled"})
    await sim.settle()
    assert (await client.get(api(f"/Calls/{queued.json()['sid']}.json"))).json()["status"] == "canceled"
    assert [(e["CallSid"], e["CallStatus"]) for e in recorder.at("/cs")] == [
        (ringing.json()["sid"], "ringing"),
        (ringing.json()["sid"], "canceled"),
    ]
