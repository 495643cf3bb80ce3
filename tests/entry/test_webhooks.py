"""Twilio's webhooks end to end: signatures, required fields, repeats, order, TwiML and the read API."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx

from tests.support.twilio_forms import Callback, conference_event, post_signed, sign, voice, whole_call

CUSTOMER = "CA" + "1" * 32
AGENT = "CA" + "2" * 32
CONF_SID = "CF" + "3" * 32
ROOM = f"room-{CUSTOMER}"


async def deliver(client: httpx.AsyncClient, callbacks: list[Callback]) -> list[httpx.Response]:
    return [await post_signed(client, cb.path, cb.params) for cb in callbacks]


async def events_of(client: httpx.AsyncClient, conference_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/conferences/{conference_id}/events")
    if response.status_code == 404:
        return []
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_whole_call_gives_the_right_state_at_every_step(client: httpx.AsyncClient) -> None:
    """Voice, joins, start, hold, unhold, mute, leaves and end each move the conference and audibility right."""
    calls = whole_call(CUSTOMER, AGENT, CONF_SID)
    responses = await deliver(client, calls[:3])
    assert [r.status_code for r in responses] == [200, 204, 204]

    before_start = (await client.get(f"/v1/conferences/{ROOM}/audibility")).json()
    assert before_start == {"hears": {"customer": [], "agent-alice": []}, "music": ["agent-alice", "customer"]}
    conf = (await client.get(f"/v1/conferences/{ROOM}")).json()
    assert conf["status"] == "init"
    assert conf["customer"] == {"call_sid": CUSTOMER, "from": "+15551230001", "to": "+15559990000"}

    await deliver(client, calls[3:4])  # start
    conf = (await client.get(f"/v1/conferences/{ROOM}")).json()
    assert conf["status"] == "in-progress" and conf["twilio_sid"] == CONF_SID
    roles = {p["label"]: (p["role"], p["status"]) for p in conf["participants"]}
    # The agent joined by TwiML elsewhere is tracked from Twilio's facts alone.
    assert roles == {"customer": ("customer", "joined"), "agent-alice": ("agent", "joined")}
    assert (await client.get(f"/v1/conferences/{ROOM}/audibility")).json() == {
        "hears": {"customer": ["agent-alice"], "agent-alice": ["customer"]}, "music": []}

    await deliver(client, calls[4:5])  # hold: the customer hears music and nobody hears them
    assert (await client.get(f"/v1/conferences/{ROOM}/audibility")).json() == {
        "hears": {"customer": [], "agent-alice": []}, "music": ["customer"]}
    customer = (await client.get(f"/v1/conferences/{ROOM}")).json()["participants"][0]
    assert customer["hold"] is True and customer["muted"] is False

    await deliver(client, calls[5:7])  # unhold, then mute the agent: the agent still hears the customer
    assert (await client.get(f"/v1/conferences/{ROOM}/audibility")).json() == {
        "hears": {"customer": [], "agent-alice": ["customer"]}, "music": []}

    await deliver(client, calls[7:])  # leaves and end
    conf = (await client.get(f"/v1/conferences/{ROOM}")).json()
    assert conf["status"] == "completed"
    assert conf["end_reason"] == "participant-with-end-conference-on-exit-left"
    assert conf["ended_at"] == "2026-11-25T12:00:09+00:00"
    assert {p["label"]: (p["status"], p["leave_reason"]) for p in conf["participants"]} == {
        "customer": ("left", "participant_hung_up"), "agent-alice": ("left", "conference_ended_via_api")}
    assert (await client.get(f"/v1/conferences/{ROOM}/audibility")).json() == {"hears": {}, "music": []}
    events = await events_of(client, ROOM)
    assert [e["type"] for e in events] == [
        "conference.created", "participant.joined", "participant.joined", "conference.started",
        "participant.held", "participant.unheld", "participant.muted", "participant.left", "participant.left",
        "conference.ended",
    ]
    assert {e["actor"] for e in events} == {"twilio"}
    assert [e["version"] for e in events] == list(range(1, 11))


async def test_a_repeated_callback_stores_nothing(client: httpx.AsyncClient) -> None:
    """The same delivery twice is answered alike and stores one event."""
    calls = whole_call(CUSTOMER, AGENT, CONF_SID)[:2]
    first = await deliver(client, calls)
    again = await deliver(client, calls)
    assert [r.status_code for r in first] == [r.status_code for r in again]
    assert first[0].text == again[0].text  # the same TwiML for a repeated voice request
    assert len(await events_of(client, ROOM)) == 2


async def test_unsigned_or_wrongly_signed_callbacks_are_rejected_and_store_nothing(client: httpx.AsyncClient) -> None:
    """No signature, a signature by another token, or a tampered field: 403 problem JSON, nothing stored."""
    cb = voice(CUSTOMER)
    unsigned = await client.post(cb.path, data=cb.params)
    other_token = await post_signed(client, cb.path, cb.params, token="not-the-token")
    tampered = await client.post(cb.path, data=cb.params | {"From": "+10000000000"},
                                 headers={"X-Twilio-Signature": sign(cb.path, cb.params)})
    for response in (unsigned, other_token, tampered):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_signature"
    assert (await client.get("/v1/conferences")).json()["items"] == []


async def test_a_missing_field_is_a_400_and_stores_nothing(client: httpx.AsyncClient) -> None:
    """A callback without a field it needs gets 400 problem JSON naming it; nothing is stored."""
    await deliver(client, [voice(CUSTOMER)])
    join = conference_event(ROOM, CONF_SID, 1, "participant-join", call_sid=AGENT, label="agent-a")
    del join.params["SequenceNumber"]
    response = await post_signed(client, join.path, join.params)
    assert response.status_code == 400
    assert "SequenceNumber" in response.json()["detail"]
    no_call = voice(CUSTOMER)
    del no_call.params["CallSid"]
    assert (await post_signed(client, no_call.path, no_call.params)).status_code == 400
    assert len(await events_of(client, ROOM)) == 1


async def test_unknown_fields_are_accepted(client: httpx.AsyncClient) -> None:
    """Twilio adds fields without notice: they are signed over and otherwise ignored."""
    cb = voice(CUSTOMER)
    cb.params["SomeNewTwilioField"] = "x"
    assert (await post_signed(client, cb.path, cb.params)).status_code == 200


async def test_caller_id_full_of_xml_specials_gives_valid_twiml(client: httpx.AsyncClient) -> None:
    """A hostile caller ID cannot break the TwiML: it parses, and the conference name and label are intact."""
    hostile = '"><Hangup/><Say>&amp;\'</Say><!--'
    response = await post_signed(client, "/twilio/voice", voice(CUSTOMER, caller=hostile).params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert [child.tag for child in root] == ["Dial"]
    conference = root.find("./Dial/Conference")
    assert conference is not None and conference.text == ROOM
    assert conference.get("participantLabel") == "customer"
    assert conference.get("statusCallback") == (
        "https://confctl.example.com/twilio/conference-status#ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx")
    assert conference.get("statusCallbackEvent") == "start end join leave mute hold modify announcement"
    assert conference.get("endConferenceOnExit") == "true"
    assert root.find(".//Hangup") is None
    conf = (await client.get(f"/v1/conferences/{ROOM}")).json()
    assert conf["customer"]["from"] == hostile


async def test_call_status_of_an_unknown_call_is_accepted_and_ignored(client: httpx.AsyncClient) -> None:
    """A call status for a call confctl does not know is acknowledged (Twilio must not retry) and not stored."""
    params = {"CallSid": "CA" + "9" * 32, "CallStatus": "completed", "SequenceNumber": "3",
              "AccountSid": "AC" + "a" * 32}
    assert (await post_signed(client, "/twilio/call-status", params)).status_code == 204
    assert (await client.get("/v1/conferences")).json()["items"] == []


async def test_recording_status_is_stored_on_the_conference(client: httpx.AsyncClient) -> None:
    """A recording callback routed by the conference_id in its URL updates the conference's recording."""
    await deliver(client, whole_call(CUSTOMER, AGENT, CONF_SID)[:4])
    path = f"/twilio/recording-status?conference_id={ROOM}"
    params = {"AccountSid": "AC" + "a" * 32, "ConferenceSid": CONF_SID, "RecordingSid": "RE" + "4" * 32,
              "RecordingStatus": "in-progress", "RecordingUrl": "https://api.twilio.com/rec/RE4",
              "RecordingSource": "Conference"}
    assert (await post_signed(client, path, params)).status_code == 204
    conf = (await client.get(f"/v1/conferences/{ROOM}")).json()
    assert conf["recording"] == {"sid": "RE" + "4" * 32, "status": "in-progress",
                                 "url": "https://api.twilio.com/rec/RE4"}
