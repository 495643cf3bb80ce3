"""Conference and call details as Twilio documents them: first-join settings, maxParticipants, leave status,
ring Timeout, CreateCall Url/Twiml and recordings passing through `processing`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from confctl.simulator import Simulator, SimulatorConfig, create_simulator
from tests.simulator.conftest import ACCOUNT, HOOKS, TOKEN, Recorder, SpecChecking, api, dial, inbound, truth

EVENTS = "start end join leave"


def _room_twiml(room: str, extra: str = "", after: str = "", label: str = "customer") -> str:
    """A caller into `room`, reporting to /y, with extra `<Conference>` attributes and verbs after `<Dial>`."""
    return (
        f'<Response><Dial><Conference participantLabel="{label}" statusCallback="{HOOKS}/y" '
        f'statusCallbackEvent="{EVENTS}" {extra}>{room}</Conference></Dial>{after}</Response>'
    )


def _error(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["code"]


# --- 1. the first participant to connect binds the conference's settings ----------------------------


async def test_settings_come_from_the_first_participant_to_connect(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A CreateParticipant leg still ringing binds nothing: the TwiML caller who connects first sets callbacks
    and recording, and the ringing leg's ConferenceStatusCallback and ConferenceRecord are ignored."""
    await client.put("/simulator/directory/client:slow", json={"behavior": "answer", "after_s": 30})
    ringing = await dial(
        client,
        "shared-room",
        "client:slow",
        "slow",
        ConferenceStatusCallback=f"{HOOKS}/x",
        ConferenceStatusCallbackEvent=EVENTS,
        ConferenceRecord="record-from-start",
        ConferenceRecordingStatusCallback=f"{HOOKS}/xrec",
        ConferenceRecordingStatusCallbackEvent="in-progress completed",
    )
    assert ringing.status_code == 201
    recorder.voice = lambda params: _room_twiml("shared-room")
    _, conference = await inbound(client, sim)  # settles: the slow leg answers 30 s after the caller joined
    assert conference == ringing.json()["conference_sid"]
    assert (await truth(client, conference))["status"] == "in-progress"
    assert recorder.at("/x") == []
    events = [(e["StatusCallbackEvent"], e.get("ParticipantLabel")) for e in recorder.at("/y")]
    assert events == [
        ("participant-join", "customer"),
        ("participant-join", "slow"),
        ("conference-start", None),
    ]
    assert (await client.get(api(f"/Conferences/{conference}/Recordings.json"))).json()["recordings"] == []
    assert recorder.at("/xrec") == []


# --- 2. maxParticipants ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "accepted"), [("1", False), ("2", True), ("250", True), ("251", False)])
async def test_rest_max_participants_is_2_to_250(client: httpx.AsyncClient, value: str, accepted: bool) -> None:
    """CreateParticipant's MaxParticipants is a positive integer from 2 to 250; other values are refused."""
    response = await dial(client, f"max-{value}", "client:a", "a", MaxParticipants=value)
    if accepted:
        assert response.status_code == 201
    else:
        assert response.status_code == 400


async def test_full_conference_refuses_a_rest_participant_with_16020(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """With maxParticipants=2 bound by the first caller, a third leg is refused with 16020 and never dialed."""
    recorder.voice = lambda params: _room_twiml("small-room", 'maxParticipants="2"')
    _, conference = await inbound(client, sim)
    assert (await dial(client, conference, "client:a", "a")).status_code == 201
    refused = await dial(client, conference, "client:b", "b")
    assert _error(refused) == (400, 16020)
    await sim.settle()
    state = await truth(client, conference)
    assert [p["label"] for p in state["participants"]] == ["customer", "a"]
    assert [c["to"] for c in (await client.get(api("/Calls.json"))).json()["calls"]].count("client:b") == 0


async def test_ringing_legs_count_towards_the_limit(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A leg still ringing holds its place: with maxParticipants=2, caller plus one ringing leg is full."""
    await client.put("/simulator/directory/client:slow", json={"behavior": "answer", "after_s": 30})
    recorder.voice = lambda params: _room_twiml("ring-room", 'maxParticipants="2"')
    _, conference = await inbound(client, sim)
    assert (await dial(client, conference, "client:slow", "slow")).status_code == 201
    assert _error(await dial(client, conference, "client:b", "b")) == (400, 16020)


async def test_full_conference_fails_a_twiml_dial(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A TwiML caller into a full conference does not join: its `<Dial>` fails and the next verb runs."""
    recorder.voice = lambda params: _room_twiml(
        "full-room", 'maxParticipants="2"', "<Say>Sorry</Say>", label=f"caller {params['From']}"
    )
    first, conference = await inbound(client, sim)
    await dial(client, conference, "client:a", "a")
    await sim.settle()
    third, _ = await inbound(client, sim, caller="+15550002")
    state = await truth(client, conference)
    assert [p["label"] for p in state["participants"]] == ["caller +15550001", "a"]
    assert first in [p["call_sid"] for p in state["participants"]]
    assert (await client.get(api(f"/Calls/{third}.json"))).json()["status"] == "completed"
    assert [e["CallSid"] for e in recorder.at("/y") if e["StatusCallbackEvent"] == "participant-join"].count(third) == 0


@pytest.mark.parametrize("value", ["0", "251", "many"])
async def test_invalid_twiml_max_participants_fails_the_dial(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder, value: str
) -> None:
    """`maxParticipants` must be a positive integer <= 250 (else 16002): the caller joins no conference."""
    recorder.voice = lambda params: _room_twiml("bad-room", f'maxParticipants="{value}"', "<Say>Sorry</Say>")
    caller, conference = await inbound(client, sim)
    assert conference is None
    assert (await client.get("/simulator/conferences/bad-room")).status_code == 404
    assert (await client.get(api(f"/Calls/{caller}.json"))).json()["status"] == "completed"


# --- 3. ParticipantCallStatus of a TwiML leg whose call goes on ---------------------------------------


@pytest.mark.parametrize("ending", ["api", "end-on-exit"])
async def test_twiml_leg_leaves_with_its_call_still_in_progress(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder, ending: str
) -> None:
    """When the conference ends, a TwiML caller leaves with ParticipantCallStatus=in-progress (its call runs the
    verbs after `<Dial>`), an API-added leg with completed (it hangs up)."""
    recorder.voice = lambda params: _room_twiml("after-room", after="<Say>Thanks for calling</Say>")
    customer, conference = await inbound(client, sim)
    agent = (await dial(client, conference, "client:a", "a", EndConferenceOnExit="true")).json()["call_sid"]
    other = (await dial(client, conference, "client:b", "b")).json()["call_sid"]
    await sim.settle()
    if ending == "api":
        await client.post(api(f"/Conferences/{conference}.json"), data={"Status": "completed"})
    else:
        await client.post(f"/simulator/calls/{agent}/hangup")
    await sim.settle()
    leaves = {
        e["CallSid"]: e["ParticipantCallStatus"]
        for e in recorder.at("/y")
        if e["StatusCallbackEvent"] == "participant-leave"
    }
    assert leaves == {customer: "in-progress", agent: "completed", other: "completed"}
    assert (await client.get(api(f"/Calls/{customer}.json"))).json()["status"] == "completed"


# --- 4. Timeout: 5-600 on CreateParticipant, at most 600 on CreateCall, plus Twilio's 5 s buffer ------


@pytest.mark.parametrize(
    ("value", "accepted"), [("4", False), ("5", True), ("600", True), ("601", False), ("0", False)]
)
async def test_participant_timeout_is_5_to_600(client: httpx.AsyncClient, value: str, accepted: bool) -> None:
    """CreateParticipant's Timeout is an integer between 5 and 600 inclusive; others are refused (21208)."""
    response = await dial(client, f"t-{value}", "client:a", "a", Timeout=value)
    if accepted:
        assert response.status_code == 201
    else:
        assert _error(response) == (400, 21208)


@pytest.mark.parametrize(
    ("value", "accepted"), [("0", False), ("-1", False), ("1", True), ("600", True), ("601", False)]
)
async def test_call_timeout_is_positive_and_at_most_600(client: httpx.AsyncClient, value: str, accepted: bool) -> None:
    """CreateCall's Timeout is a positive whole number up to 600; others are refused with 21208."""
    form = {"To": "client:a", "From": "+1555", "Twiml": "<Response/>", "Timeout": value}
    response = await client.post(api("/Calls.json"), data=form)
    if accepted:
        assert response.status_code == 201
    else:
        assert _error(response) == (400, 21208)


async def test_timeout_has_a_five_second_buffer(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """Timeout=10 rings for about 15 s: a party answering after 12 s is connected, one after 16 s is not."""
    _, conference = await inbound(client, sim)
    await client.put("/simulator/directory/client:twelve", json={"behavior": "answer", "after_s": 12})
    await client.put("/simulator/directory/client:sixteen", json={"behavior": "answer", "after_s": 16})
    hook = f"{HOOKS}/twilio/call-status"
    events = {"StatusCallback": hook, "StatusCallbackEvent": "answered completed"}
    twelve = await dial(client, conference, "client:twelve", "twelve", Timeout="10", **events)
    sixteen = await dial(client, conference, "client:sixteen", "sixteen", Timeout="10", **events)
    call = await client.post(
        api("/Calls.json"),
        data={
            "To": "client:twelve",
            "From": "+1555",
            "Twiml": "<Response><Pause/></Response>",
            "Timeout": "10",
            "StatusCallback": hook,
        },
    )
    await sim.settle()
    assert [e["CallStatus"] for e in recorder.call_events(twelve.json()["call_sid"])] == ["in-progress"]
    assert [e["CallStatus"] for e in recorder.call_events(sixteen.json()["call_sid"])] == ["no-answer"]
    assert int(recorder.call_events(call.json()["sid"])[-1]["CallDuration"]) >= 1
    assert [p["label"] for p in (await truth(client, conference))["participants"]] == ["customer", "twelve"]


# --- 5. CreateCall: Url wins over Twiml; Twiml is at most 4000 characters -------------------------------


async def test_url_wins_over_twiml(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """Given both Url and Twiml, CreateCall fetches the Url and ignores the Twiml."""
    response = await client.post(
        api("/Calls.json"),
        data={
            "To": "client:bob",
            "From": "+1555",
            "Url": f"{HOOKS}/twilio/voice",
            "Twiml": "<Response><Hangup/></Response>",
        },
    )
    assert response.status_code == 201
    call_sid = response.json()["sid"]
    await sim.settle()
    assert [v["CallSid"] for v in recorder.at("/twilio/voice")] == [call_sid]
    assert (await truth(client, f"room-{call_sid}"))["participants"][0]["call_sid"] == call_sid


@pytest.mark.parametrize(("size", "accepted"), [(4000, True), (4001, False)])
async def test_twiml_is_at_most_4000_characters(client: httpx.AsyncClient, size: int, accepted: bool) -> None:
    """A Twiml parameter longer than 4000 characters is refused with 32018."""
    shell = "<Response><Say></Say></Response>"
    twiml = shell.replace("<Say>", "<Say>" + "é" * (size - len(shell)))
    assert len(twiml) == size
    response = await client.post(api("/Calls.json"), data={"To": "client:a", "From": "+1555", "Twiml": twiml})
    if accepted:
        assert response.status_code == 201
    else:
        assert _error(response) == (400, 32018)


# --- 6. recordings: in-progress → stopped → processing → completed ------------------------------------


@pytest.fixture
async def slow_client(recorder: Recorder) -> AsyncIterator[tuple[httpx.AsyncClient, Simulator]]:
    """A simulator at a coarser time scale, so a short-lived status can be watched through REST."""
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=recorder))
    simulator = create_simulator(SimulatorConfig(ACCOUNT, TOKEN, HOOKS, time_scale=0.05), hooks)
    transport = SpecChecking(httpx.ASGITransport(app=simulator.app))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test", auth=(ACCOUNT, TOKEN)) as c:
        yield c, simulator
    await simulator.aclose()
    await hooks.aclose()


async def test_stopped_recording_is_processing_before_completed(
    slow_client: tuple[httpx.AsyncClient, Simulator], recorder: Recorder
) -> None:
    """A stopped recording reads `stopped`, then `processing`, then `completed`; the status callback reports
    only the documented conference-recording events (in-progress at the start, completed when ready)."""
    client, sim = slow_client
    first = await dial(
        client,
        "rec-room",
        "client:a",
        "a",
        ConferenceRecord="record-from-start",
        ConferenceRecordingStatusCallback=f"{HOOKS}/rec",
        ConferenceRecordingStatusCallbackEvent="in-progress completed absent",
    )
    await dial(client, "rec-room", "client:b", "b")
    await sim.settle()
    conference = first.json()["conference_sid"]
    current = api(f"/Conferences/{conference}/Recordings/Twilio.CURRENT.json")
    stopped = await client.post(current, data={"Status": "stopped"})
    assert stopped.json()["status"] == "stopped"
    resource = api(f"/Conferences/{conference}/Recordings/{stopped.json()['sid']}.json")
    seen = ["stopped"]
    for _ in range(2000):  # bounded: the whole course takes a few simulated seconds
        status = (await client.get(resource)).json()["status"]
        if status != seen[-1]:
            seen.append(status)
        if status == "completed":
            break
        await asyncio.sleep(0.002)
    assert seen == ["stopped", "processing", "completed"]
    refused = await client.post(resource, data={"Status": "paused"})
    assert refused.status_code == 400
    await sim.settle()
    assert [c["RecordingStatus"] for c in recorder.at("/rec")] == ["in-progress", "completed"]
