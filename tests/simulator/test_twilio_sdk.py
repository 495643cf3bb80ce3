"""The plain twilio SDK, sync and async, works against the simulator unchanged."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from confctl.simulator import Simulator, SimulatorConfig, create_simulator
from tests.simulator.conftest import ACCOUNT, HOOKS, TIME_SCALE, TOKEN, Recorder, inbound
from tests.simulator.sdk_support import HttpxAsyncTwilioClient, ServerThread


async def test_async_sdk_drives_conferences_participants_recordings_and_calls(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """twilio-python's *_async methods work for all the operations confctl uses."""
    recorder.voice = lambda params: (
        '<Response><Dial><Conference participantLabel="customer" record="record-from-start">'
        f"room-{params['CallSid']}</Conference></Dial></Response>"
    )
    http = HttpxAsyncTwilioClient("http://sim.test", httpx.ASGITransport(app=sim.app))
    twilio = Client(ACCOUNT, TOKEN, http_client=http)
    try:
        customer, conference_sid = await inbound(client, sim)
        room = twilio.conferences(conference_sid)
        agent = await room.participants.create_async(
            from_="+15550000",
            to="client:agent ana",
            label="agent ana",
            status_callback=f"{HOOKS}/cs",
            status_callback_event=["initiated", "answered", "completed"],
            end_conference_on_exit=False,
        )
        assert (agent.label, agent.status) == ("agent ana", "queued")
        await sim.settle()
        encoded = quote("agent ana", safe="")
        held = await room.participants(encoded).update_async(hold=True, hold_url="http://m.test/hold")
        assert held.hold is True
        muted = await room.participants(agent.call_sid).update_async(hold=False, muted=True)
        assert (muted.hold, muted.muted) == (False, True)
        coach = await room.participants.create_async(from_="+15550000", to="client:sup", label="sup")
        await sim.settle()
        coaching = await room.participants("sup").update_async(coaching=True, call_sid_to_coach=agent.call_sid)
        assert (coaching.coaching, coaching.call_sid_to_coach) == (True, agent.call_sid)
        with pytest.raises(TwilioRestException) as refused:
            await room.participants.create_async(from_="+1", to="client:x", label="sup")
        assert (refused.value.status, refused.value.code) == (400, 16026)
        assert {p.label for p in await room.participants.list_async()} == {"customer", "agent ana", "sup"}
        assert (await room.participants("sup").fetch_async()).call_sid == coach.call_sid
        assert await room.participants("sup").delete_async() is True

        (recording,) = await room.recordings.list_async()
        paused = await room.recordings("Twilio.CURRENT").update_async(status="paused", pause_behavior="skip")
        assert (paused.sid, paused.status) == (recording.sid, "paused")
        assert (await room.recordings(recording.sid).fetch_async()).status == "paused"

        listed = await twilio.conferences.list_async(status="in-progress")
        assert [c.sid for c in listed] == [conference_sid]
        assert (await room.fetch_async()).friendly_name == f"room-{customer}"
        ended = await room.update_async(status="completed")
        assert (ended.status, ended.reason_conference_ended) == ("completed", "conference-ended-via-api")

        call = await twilio.calls.create_async(to="client:bob", from_="+15550000", url=f"{HOOKS}/twilio/voice")
        await sim.settle()
        assert (await twilio.calls(call.sid).fetch_async()).status == "in-progress"
        hung_up = await twilio.calls(call.sid).update_async(status="completed")
        assert hung_up.status == "completed"
        assert call.sid in [c.sid for c in await twilio.calls.list_async(to="client:bob")]
        with pytest.raises(TwilioRestException) as missing:
            await twilio.calls("CA" + "0" * 32).fetch_async()
        assert (missing.value.status, missing.value.code) == (404, 20404)
    finally:
        await http.aclose()


def test_sync_sdk_over_real_http() -> None:
    """twilio.rest.Client with its default requests-based client works against the simulator under uvicorn."""
    recorder = Recorder()
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=recorder))
    simulator = create_simulator(SimulatorConfig(ACCOUNT, TOKEN, HOOKS, time_scale=TIME_SCALE), hooks)
    with ServerThread(simulator.app) as server:
        twilio = Client(ACCOUNT, TOKEN)
        twilio.api.base_url = server.url  # documented in twilio-python-notes.md, option B
        created = twilio.conferences("sync-room").participants.create(
            from_="+15550000",
            to="client:a",
            label="a",
            conference_status_callback=f"{HOOKS}/conf",
            conference_status_callback_event=["start", "end", "join", "leave", "hold"],
        )
        twilio.conferences("sync-room").participants.create(from_="+15550000", to="client:b", label="b")
        server.run(simulator.settle())
        room = twilio.conferences(created.conference_sid)
        assert room.fetch().status == "in-progress"
        assert room.participants("a").update(hold=True).hold is True
        assert room.participants("b").update(muted=True).muted is True
        assert [p.label for p in room.participants.list(hold=True)] == ["a"]
        assert room.participants("b").delete() is True
        assert [c.sid for c in twilio.conferences.list(friendly_name="sync-room")] == [created.conference_sid]
        assert room.update(status="completed").status == "completed"
        call = twilio.calls.create(to="client:c", from_="+1555", twiml="<Response><Hangup/></Response>")
        server.run(simulator.settle())
        assert twilio.calls(call.sid).fetch().status == "completed"
        with pytest.raises(TwilioRestException) as refused:
            twilio.calls(call.sid).update(status="completed")
        assert refused.value.code == 21220
        server.run(simulator.aclose())
        server.run(hooks.aclose())
    events = [p["StatusCallbackEvent"] for p in recorder.at("/conf")]
    assert events[:3] == ["participant-join", "participant-join", "conference-start"]
    assert events[-1] == "conference-end"
    assert all(hook.signature_valid for hook in recorder.hooks)
