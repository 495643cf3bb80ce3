"""TwiML execution: the voice request, `<Dial><Conference>` attributes, `<Say>`/`<Pause>`/`<Hangup>`."""

from __future__ import annotations

import httpx

from confctl.simulator import Simulator
from tests.simulator.conftest import HOOKS, Recorder, api, inbound, truth


async def test_voice_request_parameters(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """An inbound call POSTs CallSid, AccountSid, From, To, CallStatus=ringing, ApiVersion, Direction=inbound."""
    call_sid, _ = await inbound(client, sim, caller="+15551234567")
    (voice,) = recorder.at("/twilio/voice")
    assert voice == {
        "CallSid": call_sid,
        "AccountSid": voice["AccountSid"],
        "From": "+15551234567",
        "To": "+15559999",
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
    }
    assert recorder.hooks[0].url == f"{HOOKS}/twilio/voice"
    assert recorder.hooks[0].signature_valid


async def test_dial_conference_attributes_are_applied(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """participantLabel, start/end flags, muted, callbacks (space-separated events, method) and record apply."""
    recorder.voice = lambda params: (
        '<Response><Say>Welcome</Say><Dial><Conference participantLabel="caller" startConferenceOnEnter="false" '
        'endConferenceOnExit="true" muted="true" beep="false" waitUrl="http://music.test/wait.mp3" '
        f'statusCallback="{HOOKS}/conf" statusCallbackEvent="join leave end" statusCallbackMethod="POST" '
        f'record="record-from-start" recordingStatusCallback="{HOOKS}/rec" '
        'recordingStatusCallbackEvent="in-progress completed">attr-room</Conference></Dial></Response>'
    )
    call_sid, _ = await inbound(client, sim)
    state = await truth(client, "attr-room")
    (caller,) = state["participants"]
    assert caller | {"call_sid": None} == {
        "call_sid": None,
        "label": "caller",
        "status": "connected",
        "muted": True,
        "hold": False,
        "hold_url": None,
        "coaching": False,
        "call_sid_to_coach": None,
        "end_conference_on_exit": True,
        "start_conference_on_enter": False,
    }
    assert caller["call_sid"] == call_sid
    await client.post(
        api("/Conferences/attr-room/Participants.json"), data={"From": "+1555", "To": "client:a", "Label": "a"}
    )
    await sim.settle()
    assert (await truth(client, "attr-room"))["status"] == "in-progress"  # the agent is a starter
    await client.post(f"/simulator/calls/{call_sid}/hangup")
    await sim.settle()
    assert [p["StatusCallbackEvent"] for p in recorder.at("/conf")] == [
        "participant-join",
        "participant-join",
        "participant-leave",
        "participant-leave",
        "conference-end",
    ]
    assert recorder.at("/conf")[-1]["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    recordings = recorder.at("/rec")
    assert [r["RecordingStatus"] for r in recordings] == ["in-progress", "completed"]
    assert recordings[0]["RecordingSource"] == "Conference"
    assert recordings[0]["RecordingChannels"] == "1"


async def test_say_pause_hangup(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """Say and Pause take simulated time; Hangup ends the call and nothing after it runs."""
    recorder.voice = lambda params: (
        '<Response><Say>Please hold the line</Say><Pause length="3"/><Hangup/>'
        "<Dial><Conference>never</Conference></Dial></Response>"
    )
    response = await client.post("/simulator/calls", json={"from": "+1555", "to": "+1666"})
    call_sid = response.json()["call_sid"]
    await sim.settle()
    call = (await client.get(api(f"/Calls/{call_sid}.json"))).json()
    assert call["status"] == "completed"
    assert int(call["duration"]) >= 4  # 1 s of speech + 3 s of pause, in simulated seconds
    assert (await client.get("/simulator/conferences/never")).status_code == 404


async def test_twiml_without_dial_completes_the_call(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A document that runs out without a Dial completes the call."""
    recorder.voice = lambda params: "<Response><Say>Goodbye</Say></Response>"
    call_sid = (await client.post("/simulator/calls", json={"from": "+1", "to": "+2"})).json()["call_sid"]
    await sim.settle()
    assert (await client.get(api(f"/Calls/{call_sid}.json"))).json()["status"] == "completed"


async def test_a_doctype_is_refused(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """TwiML carrying a DTD is not parsed: the call fails like an application error."""
    recorder.voice = lambda params: (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Say>&a;</Say></Response>'
    )
    call_sid = (await client.post("/simulator/calls", json={"from": "+1", "to": "+2"})).json()["call_sid"]
    await sim.settle()
    assert (await client.get(api(f"/Calls/{call_sid}.json"))).json()["status"] == "failed"


async def test_create_call_fetches_url_when_answered(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """CreateCall with Url fetches it once answered (Direction=outbound-api, CallStatus=in-progress)."""
    response = await client.post(
        api("/Calls.json"),
        data={
            "To": "client:bob",
            "From": "+1555",
            "Url": f"{HOOKS}/twilio/voice",
            "StatusCallback": f"{HOOKS}/cs",
            "StatusCallbackEvent": ["initiated", "answered"],
        },
    )
    assert response.status_code == 201
    assert response.json()["status"] == "queued"
    call_sid = response.json()["sid"]
    await sim.settle()
    (voice,) = recorder.at("/twilio/voice")
    assert (voice["CallSid"], voice["Direction"], voice["CallStatus"]) == (call_sid, "outbound-api", "in-progress")
    assert [e["CallStatus"] for e in recorder.at("/cs")] == ["initiated", "in-progress"]
    assert (await truth(client, f"room-{call_sid}"))["participants"][0]["call_sid"] == call_sid


async def test_update_call_redirects_and_hangs_up(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """UpdateCall with Twiml takes the call out of its conference; Status=completed hangs it up."""
    call_sid, conference = await inbound(client, sim)
    redirected = await client.post(api(f"/Calls/{call_sid}.json"), data={"Twiml": "<Response><Pause/></Response>"})
    assert redirected.status_code == 200
    assert (await truth(client, conference))["status"] == "completed"
    hung_up = await client.post(api(f"/Calls/{call_sid}.json"), data={"Status": "completed"})
    assert hung_up.json()["status"] == "completed"
    again = await client.post(api(f"/Calls/{call_sid}.json"), data={"Status": "completed"})
    assert (again.status_code, again.json()["code"]) == (400, 21220)
