"""Conference recordings: record-from-start, pause/resume/stop by API, completion when the conference ends."""

from __future__ import annotations

import httpx

from confctl.simulator import Simulator
from tests.simulator.conftest import HOOKS, Recorder, api, dial


async def _recorded_room(client: httpx.AsyncClient, sim: Simulator, events: str = "in-progress completed") -> str:
    first = await dial(
        client,
        "rec-room",
        "client:a",
        "a",
        ConferenceRecord="record-from-start",
        ConferenceRecordingStatusCallback=f"{HOOKS}/rec",
        ConferenceRecordingStatusCallbackEvent=events,
    )
    await dial(client, "rec-room", "client:b", "b")
    await sim.settle()
    conference: str = first.json()["conference_sid"]
    return conference


async def test_record_from_start_begins_when_the_conference_starts(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A record-from-start conference has one in-progress recording once it starts, with a callback."""
    conference = await _recorded_room(client, sim)
    listing = (await client.get(api(f"/Conferences/{conference}/Recordings.json"))).json()
    (recording,) = listing["recordings"]
    assert (recording["status"], recording["source"], recording["channels"]) == ("in-progress", "Conference", 1)
    (callback,) = recorder.at("/rec")
    assert callback["RecordingSid"] == recording["sid"]
    assert callback["ConferenceSid"] == conference
    assert callback["RecordingStatus"] == "in-progress"
    assert set(callback) == {
        "AccountSid",
        "ConferenceSid",
        "RecordingSid",
        "RecordingUrl",
        "RecordingStatus",
        "RecordingDuration",
        "RecordingChannels",
        "RecordingStartTime",
        "RecordingSource",
    }


async def test_pause_resume_stop_with_twilio_current(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """`Twilio.CURRENT` names the active recording; paused, in-progress and stopped apply in turn, and the
    callback reports only the start and the finished file (paused and stopped are no conference events)."""
    conference = await _recorded_room(client, sim, events="in-progress paused stopped completed")
    current = api(f"/Conferences/{conference}/Recordings/Twilio.CURRENT.json")
    paused = await client.post(current, data={"Status": "paused", "PauseBehavior": "skip"})
    assert paused.json()["status"] == "paused"
    resumed = await client.post(current, data={"Status": "in-progress"})
    assert resumed.json()["status"] == "in-progress"
    stopped = await client.post(current, data={"Status": "stopped"})
    assert stopped.json()["status"] == "stopped"
    await sim.settle()
    sid = stopped.json()["sid"]
    fetched = (await client.get(api(f"/Conferences/{conference}/Recordings/{sid}.json"))).json()
    assert fetched["status"] == "completed"
    assert [c["RecordingStatus"] for c in recorder.at("/rec")] == ["in-progress", "completed"]
    gone = await client.post(current, data={"Status": "paused"})
    assert (gone.status_code, gone.json()["code"]) == (404, 20404)
    refused = await client.post(api(f"/Conferences/{conference}/Recordings/{sid}.json"), data={"Status": "paused"})
    assert refused.status_code == 400


async def test_recording_completes_when_the_conference_ends(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """Ending the conference completes its recording; by default only `completed` is reported."""
    conference = await _recorded_room(client, sim, events="")
    await client.post(api(f"/Conferences/{conference}.json"), data={"Status": "completed"})
    await sim.settle()
    (recording,) = (await client.get(api(f"/Conferences/{conference}/Recordings.json"))).json()["recordings"]
    assert recording["status"] == "completed"
    assert recording["duration"] is not None
    assert [c["RecordingStatus"] for c in recorder.at("/rec")] == ["completed"]


async def test_later_participants_do_not_turn_recording_on(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Recording settings come from the first participant: a later record-from-start is ignored."""
    first = await dial(client, "plain-room", "client:a", "a")
    await dial(client, "plain-room", "client:b", "b", ConferenceRecord="record-from-start")
    await sim.settle()
    conference = first.json()["conference_sid"]
    assert (await client.get(api(f"/Conferences/{conference}/Recordings.json"))).json()["recordings"] == []
