"""Conference behaviour as Twilio documents it: start and end rules, hold, mute, coach, labels, kicks."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from confctl.simulator import Simulator
from tests.simulator.conftest import HOOKS, Recorder, api, dial, hears, inbound, truth


async def test_conference_starts_with_two_participants_and_a_starter(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A lone starter leaves the conference in init; a second leg (not a starter itself) starts it."""
    _, conference = await inbound(client, sim)
    assert (await truth(client, conference))["status"] == "init"
    await dial(client, conference, "client:a", "a", StartConferenceOnEnter="false")
    await sim.settle()
    assert (await truth(client, conference))["status"] == "in-progress"
    assert recorder.event_names(conference) == ["participant-join", "participant-join", "conference-start"]
    await dial(client, conference, "client:b", "b")
    await sim.settle()
    assert recorder.event_names(conference).count("conference-start") == 1


async def test_no_start_without_a_starter(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """Two legs that both have startConferenceOnEnter=false leave the conference in init."""
    await dial(
        client,
        "quiet-room",
        "client:a",
        "a",
        StartConferenceOnEnter="false",
        ConferenceStatusCallback=f"{HOOKS}/twilio/conference-status",
    )
    await dial(client, "quiet-room", "client:b", "b", StartConferenceOnEnter="false")
    await sim.settle()
    state = await truth(client, "quiet-room")
    assert state["status"] == "init"
    assert [p["label"] for p in state["participants"]] == ["a", "b"]
    await dial(client, "quiet-room", "client:c", "c")
    await sim.settle()
    assert (await truth(client, "quiet-room"))["status"] == "in-progress"
    assert recorder.event_names(state["sid"]) == ["conference-start"]


async def test_everyone_hears_wait_music_before_the_start(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Before the conference starts, every connected leg hears the wait music and nobody else."""
    _, conference = await inbound(client, sim)
    assert await hears(client, conference) == {"hears": {"customer": []}, "music": ["customer"]}
    await dial(client, conference, "client:agent", "agent")
    await sim.settle()
    assert await hears(client, conference) == {
        "hears": {"agent": ["customer"], "customer": ["agent"]},
        "music": [],
    }


async def test_hold_mute_and_coach_audibility(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Held: music and unheard; muted: hears all, unheard; coaching: heard only by the coached leg."""
    customer, conference = await inbound(client, sim)
    agent = (await dial(client, conference, "client:agent", "agent")).json()["call_sid"]
    await sim.settle()
    await dial(client, conference, "client:sup", "sup", Coaching="true", CallSidToCoach=agent)
    await sim.settle()
    assert await hears(client, conference) == {
        "hears": {"agent": ["customer", "sup"], "customer": ["agent"], "sup": ["agent", "customer"]},
        "music": [],
    }
    await client.post(api(f"/Conferences/{conference}/Participants/customer.json"), data={"Hold": "true"})
    await client.post(api(f"/Conferences/{conference}/Participants/agent.json"), data={"Muted": "true"})
    assert await hears(client, conference) == {
        "hears": {"agent": ["sup"], "customer": [], "sup": []},
        "music": ["customer"],
    }
    assert customer


async def test_last_participant_leaving_ends_the_conference(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """When the last leg hangs up the conference completes with last-participant-left."""
    customer, conference = await inbound(client, sim)
    await client.post(f"/simulator/calls/{customer}/hangup")
    await sim.settle()
    state = await truth(client, conference)
    assert state["status"] == "completed"
    assert state["reason_conference_ended"] == "last-participant-left"
    end = recorder.conference_events(conference)[-1]
    assert end["StatusCallbackEvent"] == "conference-end"
    assert end["ReasonConferenceEnded"] == "last-participant-left"
    assert end["CallSidEndingConference"] == customer
    assert end["ParticipantLabelEndingConference"] == "customer"


async def test_end_on_exit_participant_leaving_ends_the_conference(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A leg with endConferenceOnExit leaving ends the conference; every other leg leaves and completes."""
    customer, conference = await inbound(client, sim)
    agent = (await dial(client, conference, "client:agent", "agent", EndConferenceOnExit="true")).json()
    await dial(client, conference, "client:other", "other")
    await sim.settle()
    await client.post(f"/simulator/calls/{agent['call_sid']}/hangup")
    await sim.settle()
    state = await truth(client, conference)
    assert (state["status"], state["reason_conference_ended"]) == (
        "completed",
        "participant-with-end-conference-on-exit-left",
    )
    assert state["participants"] == []
    leaves = [e for e in recorder.conference_events(conference) if e["StatusCallbackEvent"] == "participant-leave"]
    assert {e["ParticipantLabel"]: e["ReasonParticipantLeft"] for e in leaves} == {
        "agent": "participant_hung_up",
        "customer": "moderator_ended_conference",
        "other": "moderator_ended_conference",
    }
    assert recorder.event_names(conference)[-1] == "conference-end"
    assert (await client.get(api(f"/Calls/{customer}.json"))).json()["status"] == "completed"


async def test_first_participants_callback_settings_win(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """Conference callback URL and events come from the first participant; later ones are ignored."""
    await dial(
        client,
        "room-f",
        "client:a",
        "a",
        ConferenceStatusCallback=f"{HOOKS}/first",
        ConferenceStatusCallbackEvent="join",
    )
    await dial(
        client,
        "room-f",
        "client:b",
        "b",
        ConferenceStatusCallback=f"{HOOKS}/second",
        ConferenceStatusCallbackEvent="start end join leave",
    )
    await sim.settle()
    assert recorder.at("/second") == []
    assert [(p["StatusCallbackEvent"], p["ParticipantLabel"]) for p in recorder.at("/first")] == [
        ("participant-join", "a"),
        ("participant-join", "b"),
    ]


async def test_end_conference_on_exit_is_ignored_while_on_hold(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Setting EndConferenceOnExit on a held participant changes nothing; unheld it takes effect."""
    _, conference = await inbound(client, sim)
    await dial(client, conference, "client:agent", "agent")
    await sim.settle()
    path = api(f"/Conferences/{conference}/Participants/agent.json")
    await client.post(path, data={"Hold": "true"})
    held = await client.post(path, data={"EndConferenceOnExit": "true"})
    assert held.json()["end_conference_on_exit"] is False
    await client.post(path, data={"Hold": "false"})
    unheld = await client.post(path, data={"EndConferenceOnExit": "true"})
    assert unheld.json()["end_conference_on_exit"] is True


async def test_coach_target_must_be_connected_16028(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Coaching a leg that is not connected (or naming none) is refused with 16028."""
    _, conference = await inbound(client, sim)
    ringing = (await dial(client, conference, "client:agent", "agent")).json()["call_sid"]
    response = await dial(client, conference, "client:sup", "sup", Coaching="true", CallSidToCoach=ringing)
    assert (response.status_code, response.json()["code"]) == (400, 16028)
    no_target = await dial(client, conference, "client:sup", "sup", Coaching="true")
    assert no_target.json()["code"] == 16028
    await sim.settle()
    ok = await dial(client, conference, "client:sup", "sup", Coaching="true", CallSidToCoach=ringing)
    assert ok.status_code == 201
    assert ok.json()["coaching"] is True


async def test_label_is_usable_in_the_path(client: httpx.AsyncClient, sim: Simulator) -> None:
    """A label, percent-encoded (with a space, `#` and `?`), works in place of the CallSid."""
    _, conference = await inbound(client, sim)
    label = "agent ana#2?"
    created = await dial(client, conference, "client:ana", label)
    await sim.settle()
    path = api(f"/Conferences/{conference}/Participants/{quote(label, safe='')}.json")
    fetched = await client.get(path)
    assert fetched.status_code == 200
    assert fetched.json()["call_sid"] == created.json()["call_sid"]
    assert fetched.json()["label"] == label
    muted = await client.post(path, data={"Muted": "true"})
    assert muted.json()["muted"] is True


async def test_delete_kicks_the_participant(client: httpx.AsyncClient, sim: Simulator, recorder: Recorder) -> None:
    """DELETE answers 204, the leg leaves the conference and its call completes."""
    _, conference = await inbound(client, sim)
    agent = (await dial(client, conference, "client:agent", "agent")).json()["call_sid"]
    await sim.settle()
    response = await client.delete(api(f"/Conferences/{conference}/Participants/agent.json"))
    assert (response.status_code, response.content) == (204, b"")
    await sim.settle()
    assert [p["label"] for p in (await truth(client, conference))["participants"]] == ["customer"]
    assert (await client.get(api(f"/Calls/{agent}.json"))).json()["status"] == "completed"
    leave = recorder.conference_events(conference)[-1]
    assert (leave["StatusCallbackEvent"], leave["ReasonParticipantLeft"]) == (
        "participant-leave",
        "participant_updated_via_api",
    )
    missing = await client.get(api(f"/Conferences/{conference}/Participants/agent.json"))
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
