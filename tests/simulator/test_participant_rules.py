"""Participant rules as strict as Twilio's: callback fields, coaching (16000, 16027, 16028, 13240), labels
(16023, 16024, 16025, 16026) and which updates fire participant-modify.

REST refusals are checked against the spec subset (the request is one the spec documents) and against
Twilio's error body; TwiML refusals fail the `<Dial>`, the document goes on with its next verb, and the
error shows in the simulator's alert log (`/simulator/alerts`, Twilio's Debugger).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from confctl.simulator import Simulator
from tests.simulator.conftest import ACCOUNT, HOOKS, TOKEN, Recorder, api, dial, inbound, truth
from tests.simulator.sdk_support import HttpxAsyncTwilioClient
from tests.twilio_spec import validate_request

# Conference status callback parameters per the `<Conference>` page's table (webhooks.md, section c).
DOCUMENTED_CONFERENCE_PARAMS = {
    "ConferenceSid",
    "FriendlyName",
    "AccountSid",
    "SequenceNumber",
    "Timestamp",
    "StatusCallbackEvent",
    "CallSid",
    "Muted",
    "Hold",
    "Coaching",
    "EndConferenceOnExit",
    "StartConferenceOnEnter",
    "ParticipantLabel",
    "CallSidEndingConference",
    "ParticipantLabelEndingConference",
    "ReasonConferenceEnded",
    "Reason",
    "AnnounceUrl",
    "ReasonAnnouncementFailed",
    "ParticipantCallStatus",
    "ReasonParticipantLeft",
}


def refused(response: httpx.Response, status: int, code: int) -> None:
    """The request is one the spec documents, and the answer is Twilio's error body with this code."""
    request = response.request
    validate_request(request.method, str(request.url), dict(request.headers), request.content)
    body = response.json()
    assert response.status_code == status, body
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    assert body["message"]


async def alerts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/simulator/alerts")
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()
    return result


async def agent_and_customer(client: httpx.AsyncClient, sim: Simulator) -> tuple[str, str, str]:
    """A customer in their room plus a connected agent: (conference SID, customer SID, agent SID)."""
    customer, conference = await inbound(client, sim)
    agent = (await dial(client, conference, "client:agent", "agent")).json()["call_sid"]
    await sim.settle()
    return conference, customer, agent


def twiml_caller(recorder: Recorder, conference_tag: str) -> None:
    """The next inbound call runs this `<Dial><Conference>` and then, if the Dial fails, enters `fallback`."""
    recorder.voice = lambda params: (
        f"<Response><Dial>{conference_tag}</Dial>"
        '<Dial><Conference participantLabel="fallback">fallback</Conference></Dial></Response>'
    )


async def call_in(client: httpx.AsyncClient, sim: Simulator) -> str:
    response = await client.post("/simulator/calls", json={"from": "+15550002", "to": "+15559999"})
    await sim.settle()
    sid: str = response.json()["call_sid"]
    return sid


async def in_fallback(client: httpx.AsyncClient, call_sid: str) -> bool:
    """Whether the call went on to the verb after its failed `<Dial>` (the `fallback` room)."""
    state = await truth(client, "fallback")
    return [p["call_sid"] for p in state["participants"]] == [call_sid]


# --- 1. CallSidToCoach is not a callback field ---------------------------------------------------------


async def test_conference_callbacks_carry_coaching_but_no_call_sid_to_coach(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A coach's join and modify callbacks say Coaching=true without CallSidToCoach; the REST resource has it."""
    conference, _, agent = await agent_and_customer(client, sim)
    sup = await dial(client, conference, "client:sup", "sup", Coaching="true", CallSidToCoach=agent)
    assert sup.json()["call_sid_to_coach"] == agent
    await dial(client, conference, "client:sup2", "sup2")
    await sim.settle()
    updated = await client.post(
        api(f"/Conferences/{conference}/Participants/sup2.json"), data={"Coaching": "true", "CallSidToCoach": agent}
    )
    assert (updated.json()["coaching"], updated.json()["call_sid_to_coach"]) == (True, agent)
    await sim.settle()
    events = recorder.conference_events(conference)
    coach_events = [e for e in events if e.get("ParticipantLabel") in ("sup", "sup2")]
    assert [(e["StatusCallbackEvent"], e["Coaching"]) for e in coach_events] == [
        ("participant-join", "true"),
        ("participant-join", "false"),
        ("participant-modify", "true"),
    ]
    assert all("CallSidToCoach" not in e for e in events)
    assert all(set(e) <= DOCUMENTED_CONFERENCE_PARAMS for e in events)


# --- 2. 16027: the coached participant is on hold --------------------------------------------------------


async def test_coaching_a_held_participant_is_16027(client: httpx.AsyncClient, sim: Simulator) -> None:
    """CreateParticipant or UpdateParticipant coaching a held leg answers 400 with 16027 and changes nothing."""
    conference, _, agent = await agent_and_customer(client, sim)
    await client.post(api(f"/Conferences/{conference}/Participants/agent.json"), data={"Hold": "true"})
    created = await dial(client, conference, "client:sup", "sup", Coaching="true", CallSidToCoach=agent)
    refused(created, 400, 16027)
    implied = await dial(client, conference, "client:sup", "sup", CallSidToCoach=agent)  # Coaching implied
    refused(implied, 400, 16027)
    await dial(client, conference, "client:sup", "sup")
    await sim.settle()
    path = api(f"/Conferences/{conference}/Participants/sup.json")
    refused(await client.post(path, data={"Coaching": "true", "CallSidToCoach": agent}), 400, 16027)
    refused(await client.post(path, data={"CallSidToCoach": agent}), 400, 16027)
    assert (await client.get(path)).json()["coaching"] is False
    await client.post(api(f"/Conferences/{conference}/Participants/agent.json"), data={"Hold": "false"})
    coaching = await client.post(path, data={"Coaching": "true", "CallSidToCoach": agent})
    assert (coaching.status_code, coaching.json()["call_sid_to_coach"]) == (200, agent)


# --- 3. 16000: coaching needs Agent Conference --------------------------------------------------------


async def test_coaching_needs_agent_conference_16000(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """With the account's Agent Conference off, REST coaching is 16000 and a TwiML coach fails its Dial."""
    assert (await client.get("/simulator/account")).json() == {"agent_conference": True}
    conference, customer, agent = await agent_and_customer(client, sim)
    switched = await client.put("/simulator/account", json={"agent_conference": False})
    assert switched.json() == {"agent_conference": False}
    refused(await dial(client, conference, "client:sup", "sup", Coaching="true", CallSidToCoach=agent), 400, 16000)
    await dial(client, conference, "client:sup", "sup")
    await sim.settle()
    path = api(f"/Conferences/{conference}/Participants/sup.json")
    refused(await client.post(path, data={"Coaching": "true", "CallSidToCoach": agent}), 400, 16000)
    assert (await client.post(path, data={"Coaching": "false", "Muted": "true"})).status_code == 200

    twiml_caller(recorder, f'<Conference participantLabel="sup3" coach="{agent}">room-{customer}</Conference>')
    caller = await call_in(client, sim)
    assert "sup3" not in [p["label"] for p in (await truth(client, conference))["participants"]]
    assert await in_fallback(client, caller)
    assert [(a["error_code"], a["call_sid"]) for a in await alerts(client)] == [(16000, caller)]

    await client.put("/simulator/account", json={"agent_conference": True})
    allowed = await client.post(path, data={"Coaching": "true", "CallSidToCoach": agent})
    assert allowed.json()["coaching"] is True


# --- 4. labels: 16024 / 16026 on REST, 16023 / 16025 in TwiML ----------------------------------------


BAD_LABELS = [
    "x" * 129,
    "CA" + "0123456789abcdef" * 2,  # shaped like a CallSid
    "CA" + "0123456789ABCDEF" * 2,  # Twilio's own CallSid pattern takes either case
    "team/a",
    "team%2Fa",
    "team%2fa",
]


async def test_invalid_rest_labels_are_16024(client: httpx.AsyncClient, sim: Simulator) -> None:
    """A Label over 128 characters, shaped like a CallSid, or with `/` (or %2F) is 16024; 128 is fine."""
    _, conference = await inbound(client, sim)
    for label in BAD_LABELS:
        refused(await dial(client, conference, "client:x", label), 400, 16024)
    refused(await dial(client, "new-room", "client:x", "a/b"), 400, 16024)
    assert (await client.get("/simulator/conferences/new-room")).status_code == 404  # no room left behind
    assert (await dial(client, conference, "client:x", "y" * 128)).status_code == 201
    assert (await dial(client, conference, "client:z", "CA-not-a-sid")).status_code == 201


async def test_duplicate_rest_label_is_16026(client: httpx.AsyncClient, sim: Simulator) -> None:
    """A CreateParticipant reusing a live label (from TwiML or from the API) is 16026, not TwiML's 16025."""
    _, conference = await inbound(client, sim)
    refused(await dial(client, conference, "client:x", "customer"), 400, 16026)
    await dial(client, conference, "client:agent", "agent")
    refused(await dial(client, conference, "client:y", "agent"), 400, 16026)


async def test_invalid_twiml_label_is_16023_and_the_dial_falls_through(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """`<Conference participantLabel>` that Twilio refuses: 16023, no join, the next verb runs."""
    for label in BAD_LABELS[:2] + BAD_LABELS[3:5]:
        twiml_caller(recorder, f'<Conference participantLabel="{label}">room-bad</Conference>')
        caller = await call_in(client, sim)
        assert await in_fallback(client, caller)
        await client.post(f"/simulator/calls/{caller}/hangup")
        await sim.settle()
    assert [a["error_code"] for a in await alerts(client)] == [16023] * 4
    assert (await client.get("/simulator/conferences/room-bad")).status_code == 404


async def test_duplicate_twiml_label_is_16025_and_the_dial_falls_through(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A TwiML caller taking a label in use (here by an API leg) does not join: 16025, then the next verb."""
    conference, customer, _ = await agent_and_customer(client, sim)
    twiml_caller(recorder, f'<Conference participantLabel="agent">room-{customer}</Conference>')
    caller = await call_in(client, sim)
    assert [p["label"] for p in (await truth(client, conference))["participants"]] == ["customer", "agent"]
    assert await in_fallback(client, caller)
    assert [(a["error_code"], a["call_sid"]) for a in await alerts(client)] == [(16025, caller)]


async def test_a_slash_label_in_the_path_names_nobody(client: httpx.AsyncClient, sim: Simulator) -> None:
    """No participant can carry a `/`, so a path label with %2F finds nobody (20404)."""
    conference, _, _ = await agent_and_customer(client, sim)
    missing = await client.get(api(f"/Conferences/{conference}/Participants/agent%2Fx.json"))
    refused(missing, 404, 20404)


# --- 5. 13240: a TwiML coach must name a connected participant --------------------------------------


async def test_twiml_coach_of_a_call_not_in_the_conference_is_13240(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """coach= naming no call, a leg that left, a leg of another room or no SID fails the Dial (13240); the
    TwiML goes on with its next verb."""
    conference, customer, agent = await agent_and_customer(client, sim)
    gone = (await dial(client, conference, "client:gone", "gone")).json()["call_sid"]
    await sim.settle()
    await client.post(f"/simulator/calls/{gone}/hangup")
    other_room_caller, _ = await inbound(client, sim, caller="+15550003")
    targets = ["CA" + "0" * 32, gone, other_room_caller, "not-a-sid"]
    callers = []
    for target in targets:
        twiml_caller(recorder, f'<Conference participantLabel="sup" coach="{target}">room-{customer}</Conference>')
        callers.append(caller := await call_in(client, sim))
        assert await in_fallback(client, caller)
        await client.post(f"/simulator/calls/{caller}/hangup")
    assert [(a["error_code"], a["call_sid"]) for a in await alerts(client)] == [(13240, c) for c in callers]
    twiml_caller(recorder, f'<Conference participantLabel="sup" coach="{agent}">room-{customer}</Conference>')
    coach = await call_in(client, sim)
    sup = next(p for p in (await truth(client, conference))["participants"] if p["label"] == "sup")
    assert (sup["call_sid"], sup["coaching"], sup["call_sid_to_coach"]) == (coach, True, agent)


async def test_twiml_coach_before_the_conference_starts_is_13240(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A lone customer's room has not started: Twilio wants the coached call in an in-progress conference."""
    customer, conference = await inbound(client, sim)
    assert (await truth(client, conference))["status"] == "init"
    twiml_caller(recorder, f'<Conference participantLabel="sup" coach="{customer}">room-{customer}</Conference>')
    caller = await call_in(client, sim)
    assert await in_fallback(client, caller)
    assert [a["error_code"] for a in await alerts(client)] == [13240]
    refused(await dial(client, conference, "client:sup", "sup2", CallSidToCoach=customer), 400, 16028)


async def test_twiml_coach_of_a_held_participant_is_16027(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A TwiML coach naming a held participant fails its Dial with 16027 and the TwiML goes on."""
    conference, customer, agent = await agent_and_customer(client, sim)
    await client.post(api(f"/Conferences/{conference}/Participants/agent.json"), data={"Hold": "true"})
    twiml_caller(recorder, f'<Conference participantLabel="sup" coach="{agent}">room-{customer}</Conference>')
    caller = await call_in(client, sim)
    assert await in_fallback(client, caller)
    assert [(a["error_code"], a["call_sid"]) for a in await alerts(client)] == [(16027, caller)]


# --- 6. participant-modify only for the listed attributes -------------------------------------------


async def test_participant_modify_only_for_beep_end_on_exit_coaching_and_wait_url(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """BeepOnExit, EndConferenceOnExit, Coaching and WaitUrl changes fire participant-modify; a new
    CallSidToCoach while Coaching stays true, a HoldUrl, or a repeat of the same value fire nothing."""
    conference, customer, agent = await agent_and_customer(client, sim)
    await dial(client, conference, "client:sup", "sup")
    await sim.settle()
    path = api(f"/Conferences/{conference}/Participants/sup.json")

    async def modifies(form: dict[str, str]) -> int:
        before = len(recorder.conference_events(conference))
        response = await client.post(path, data=form)
        assert response.status_code == 200, response.json()
        await sim.settle()
        return [e["StatusCallbackEvent"] for e in recorder.conference_events(conference)[before:]].count(
            "participant-modify"
        )

    assert await modifies({"BeepOnExit": "false"}) == 1
    assert await modifies({"BeepOnExit": "false"}) == 0
    assert await modifies({"EndConferenceOnExit": "true"}) == 1
    assert await modifies({"WaitUrl": f"{HOOKS}/wait"}) == 1
    assert await modifies({"HoldUrl": f"{HOOKS}/hold"}) == 0
    assert await modifies({"Coaching": "true", "CallSidToCoach": agent}) == 1
    retarget = await modifies({"CallSidToCoach": customer})
    assert (await client.get(path)).json()["call_sid_to_coach"] == customer
    assert retarget == 0
    assert await modifies({"Coaching": "false"}) == 1


async def test_the_twilio_sdk_sees_the_label_and_coaching_codes(client: httpx.AsyncClient, sim: Simulator) -> None:
    """twilio-python raises TwilioRestException with Twilio's status and code for 16024, 16026 and 16027."""
    conference, _, agent = await agent_and_customer(client, sim)
    await client.post(api(f"/Conferences/{conference}/Participants/agent.json"), data={"Hold": "true"})
    http = HttpxAsyncTwilioClient("http://sim.test", httpx.ASGITransport(app=sim.app))
    room = Client(ACCOUNT, TOKEN, http_client=http).conferences(conference)
    try:
        for kwargs, code in (
            ({"label": "a/b"}, 16024),
            ({"label": "agent"}, 16026),
            ({"label": "sup", "coaching": True, "call_sid_to_coach": agent}, 16027),
        ):
            with pytest.raises(TwilioRestException) as refusal:
                await room.participants.create_async(from_="+15550000", to="client:x", **kwargs)
            assert (refusal.value.status, refusal.value.code) == (400, code)
    finally:
        await http.aclose()
