"""All 15 operations of the spec subset, each request and response checked against Twilio's OpenAPI spec.

The `client` fixture validates every exchange with openapi-core; these tests make sure every operation
is exercised, that resources carry exactly the schema's fields, and that paging works as Twilio's.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_core.validation.response.exceptions import ResponseValidationError

from confctl.simulator import Simulator
from tests.simulator.conftest import HOOKS, Recorder, api, dial, inbound
from tests.twilio_spec import spec_dict, validate_response

OPERATIONS = {
    "CreateCall",
    "ListCall",
    "FetchCall",
    "UpdateCall",
    "ListConference",
    "FetchConference",
    "UpdateConference",
    "CreateParticipant",
    "ListParticipant",
    "FetchParticipant",
    "UpdateParticipant",
    "DeleteParticipant",
    "ListConferenceRecording",
    "FetchConferenceRecording",
    "UpdateConferenceRecording",
}


def _fields(schema: str) -> set[str]:
    return set(spec_dict()["components"]["schemas"][schema]["properties"])


def _exact(resource: dict[str, Any], schema: str) -> None:
    assert set(resource) == _fields(f"api.v2010.account.{schema}")


async def test_every_operation_answers_per_the_spec(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """A session using all 15 operations passes request and response validation, with exact field sets."""
    recorder.voice = lambda params: (
        '<Response><Dial><Conference participantLabel="customer" record="record-from-start">'
        f"room-{params['CallSid']}</Conference></Dial></Response>"
    )
    customer, conference = await inbound(client, sim)
    created = await dial(
        client,
        conference,
        "client:agent",
        "agent",
        StatusCallbackEvent=["initiated", "answered"],
        Passports="x",
        EmergencyCity="y",
    )
    _exact(created.json(), "conference.participant")
    await sim.settle()
    participant = api(f"/Conferences/{conference}/Participants/agent.json")
    _exact((await client.get(participant)).json(), "conference.participant")
    _exact(
        (await client.post(participant, data={"Hold": "true", "HoldUrl": "http://m.test/h"})).json(),
        "conference.participant",
    )
    listing = (await client.get(api(f"/Conferences/{conference}/Participants.json"), params={"Hold": "true"})).json()
    assert [p["label"] for p in listing["participants"]] == ["agent"]
    recordings = (await client.get(api(f"/Conferences/{conference}/Recordings.json"))).json()["recordings"]
    _exact(recordings[0], "conference.conference_recording")
    recording = api(f"/Conferences/{conference}/Recordings/{recordings[0]['sid']}.json")
    _exact((await client.get(recording)).json(), "conference.conference_recording")
    await client.post(recording, data={"Status": "paused"})
    assert (await client.delete(participant)).status_code == 204

    call = await client.post(
        api("/Calls.json"),
        data={"To": "client:bob", "From": "+1555", "Twiml": "<Response><Pause length='60'/></Response>"},
    )
    _exact(call.json(), "call")
    sid = call.json()["sid"]
    _exact((await client.get(api(f"/Calls/{sid}.json"))).json(), "call")
    _exact((await client.post(api(f"/Calls/{sid}.json"), data={"Status": "canceled"})).json(), "call")
    calls = (await client.get(api("/Calls.json"), params={"To": "client:bob"})).json()["calls"]
    assert [c["sid"] for c in calls] == [sid]

    _exact((await client.get(api(f"/Conferences/{conference}.json"))).json(), "conference")
    ended = (await client.post(api(f"/Conferences/{conference}.json"), data={"Status": "completed"})).json()
    assert (ended["status"], ended["reason_conference_ended"]) == ("completed", "conference-ended-via-api")
    listed = (await client.get(api("/Conferences.json"), params={"Status": "completed"})).json()["conferences"]
    assert [c["sid"] for c in listed] == [conference]
    await sim.settle()
    assert (await client.get(api(f"/Calls/{customer}.json"))).json()["status"] == "completed"

    seen = {r["operation"] for r in sim.requests if isinstance(r["status"], int) and r["status"] < 300}
    assert seen == OPERATIONS


async def test_paging_follows_next_page_uri(client: httpx.AsyncClient, sim: Simulator) -> None:
    """Lists page with PageSize/Page and hand out next_page_uri until the last page."""
    for label in ("a", "b", "c"):
        await dial(client, f"room-{label}", f"client:{label}", label)
    page = (await client.get(api("/Conferences.json"), params={"PageSize": 2})).json()
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["previous_page_uri"] is None
    names = [c["friendly_name"] for c in page["conferences"]]
    second = (await client.get(page["next_page_uri"])).json()
    names += [c["friendly_name"] for c in second["conferences"]]
    assert second["next_page_uri"] is None
    assert second["previous_page_uri"] is not None
    assert names == ["room-c", "room-b", "room-a"]  # newest first


async def test_list_fields_accept_spaces_and_repeats(
    client: httpx.AsyncClient, sim: Simulator, recorder: Recorder
) -> None:
    """StatusCallbackEvent works as repeated keys and as one space-separated value."""
    repeated = await dial(
        client, "room-r", "client:a", "a", StatusCallback=f"{HOOKS}/s", StatusCallbackEvent=["initiated", "ringing"]
    )
    spaced = await dial(
        client, "room-r", "client:b", "b", StatusCallback=f"{HOOKS}/s", StatusCallbackEvent="initiated ringing"
    )
    await sim.settle()
    delivered = [(hook.params["CallSid"], hook.params["CallStatus"]) for hook in recorder.hooks if hook.path == "/s"]
    for created in (repeated, spaced):
        sid = created.json()["call_sid"]
        assert [status for call, status in delivered if call == sid] == ["initiated", "ringing"]


def test_validator_rejects_a_wrong_response() -> None:
    """The helper really validates: a participant with a malformed call_sid is refused."""
    url = "https://api.twilio.com" + api("/Conferences/CF" + "0" * 32 + "/Participants/CA1.json")
    body = b'{"call_sid": "nope", "muted": false}'
    with pytest.raises(ResponseValidationError, match="does not match"):
        validate_response("GET", url, 200, {"content-type": "application/json"}, body)
