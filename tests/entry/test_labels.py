"""Labels Twilio would refuse are `422 invalid_label` problems before anything is stored, as the OpenAPI says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ROOM = "room-CA" + "1" * 32
HEX = "0123456789abcdef" * 2
BAD_LABELS = [
    pytest.param("x" * 129, id="129 characters"),
    pytest.param("CA" + HEX, id="a CallSid"),
    pytest.param("CA" + HEX.upper(), id="a CallSid in upper case"),
    pytest.param("team/a", id="slash"),
    pytest.param("team%2Fa", id="%2F"),
    pytest.param("team%2fa", id="%2f"),
    pytest.param("", id="empty"),
]


def assert_invalid_label(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_label" and body["status"] == 422
    assert body["detail"].startswith(field), body


@pytest.mark.parametrize("label", BAD_LABELS)
@pytest.mark.parametrize(("path", "body"), [
    pytest.param("/participants", {"to": "client:bob", "role": "agent"}, id="participant"),
    pytest.param("/participants", {"to": "client:sue", "role": "supervisor"}, id="supervisor"),
    pytest.param("/transfers", {"kind": "warm", "from": "alice", "to": "client:bob"}, id="transfer"),
])
async def test_a_label_twilio_would_refuse_is_invalid_label(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], label: str
) -> None:
    """Over 128 characters, CallSid-shaped (any case), with `/` or `%2F` (any case), or empty: 422 invalid_label."""
    response = await client.post(f"/v1/conferences/{ROOM}{path}", json={**body, "label": label})
    assert_invalid_label(response, "label")


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    pytest.param("POST", "/participants", {"to": "client:sue", "role": "supervisor", "mode": "coach",
                                           "coach": "team/a"}, "coach", id="coach on a dial"),
    pytest.param("PATCH", "/participants/sue", {"mode": "coach", "coach": "team%2Fa"}, "coach", id="coach on a switch"),
    pytest.param("POST", "/transfers", {"kind": "warm", "from": "a/b", "to": "client:bob"}, "from", id="from"),
    pytest.param("POST", "/participants", {"to": "client:bob", "role": "agent", "label": "a\u0000"}, "label",
                 id="NUL"),
])
async def test_a_label_naming_a_participant_that_no_label_can_be_is_invalid_label(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    """`coach` and a transfer's `from` name a participant by label: one that no label can be is invalid_label."""
    response = await client.request(method, f"/v1/conferences/{ROOM}{path}", json=body)
    assert_invalid_label(response, field)


@pytest.mark.parametrize("body", [
    pytest.param({"to": "client:bob", "role": "agent", "label": "y" * 128}, id="128 characters"),
    pytest.param({"to": "client:bob", "role": "agent", "label": "CA-not-a-sid"}, id="CA but no CallSid"),
    pytest.param({"to": "client:sue", "role": "supervisor", "mode": "coach", "coach": "CA" + HEX},
                 id="coach named by CallSid"),
])
async def test_labels_twilio_takes_pass_validation(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """128 characters, a near-miss of a CallSid, or a CallSid naming the coached leg: past validation (this app
    has no Twilio gateway: 503)."""
    response = await client.post(f"/v1/conferences/{ROOM}/participants", json=body)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "twilio_unavailable"


@pytest.mark.parametrize("participant", ["a%2Fb", "a%2fb", "a/b"])
async def test_a_participant_path_with_a_slash_matches_no_route(client: httpx.AsyncClient, participant: str) -> None:
    """No label holds `/`: a `{participant}` with one (even as %2F) matches no route, a plain 404 not_found."""
    response = await client.get(f"/v1/conferences/{ROOM}/participants/{participant}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_the_openapi_document_states_the_label_rules_and_their_problem(client: httpx.AsyncClient) -> None:
    """The new-label schema says 128 characters, no `/`, no CallSid; the commands that take labels document
    invalid_label among their 422s, and those that coach document coach_target_on_hold among their 409s."""
    spec = (await client.get("/openapi.json")).json()
    label = spec["components"]["schemas"]["AddParticipantRequest"]["properties"]["label"]["anyOf"][0]
    assert label["maxLength"] == 128 and "/" not in label["pattern"].replace("\\-", "")
    assert "CallSid" in label["description"] and "invalid_label" in label["description"]
    operations = {op["operationId"]: op for item in spec["paths"].values() for op in item.values()}
    for name in ("addParticipant", "changeParticipant", "startTransfer"):
        assert "invalid_label" in operations[name]["responses"]["422"]["description"], name
    for name in ("addParticipant", "changeParticipant"):
        assert "coach_target_on_hold" in operations[name]["responses"]["409"]["description"], name
