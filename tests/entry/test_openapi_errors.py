"""The OpenAPI document is honest about errors: every error is problem+json as documented, the /twilio/* 403 is
documented, and a 405 names the methods the path has."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def spec_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


async def test_every_error_response_is_documented_as_problem_json(client: httpx.AsyncClient) -> None:
    """Each 4xx and 5xx of every operation is application/problem+json with the Problem schema (the readiness
    probe's 503, a Health document, is the one error with a body of its own)."""
    spec = await spec_of(client)
    seen = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] not in "45" or (path, status) == ("/readyz", "503"):
                    continue
                assert response.get("content") == PROBLEM, (method, path, status, response)
                seen += 1
    assert seen > 50
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/conference-status", "/twilio/call-status",
                                  "/twilio/recording-status"])
async def test_the_403_of_each_webhook_is_documented(client: httpx.AsyncClient, path: str) -> None:
    """A webhook without Twilio's signature answers 403 invalid_signature, and the document says so."""
    responses = (await spec_of(client))["paths"][path]["post"]["responses"]
    assert responses["403"]["content"] == PROBLEM
    assert "invalid_signature" in responses["403"]["description"]
    response = await client.post(path, data={"CallSid": "CA" + "1" * 32})
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/twilio/voice", "POST"),
    ("PUT", "/v1/conferences/room-x/participants/agent", "DELETE, GET, PATCH"),
    ("DELETE", "/v1/conferences", "GET"),
    ("HEAD", "/v1/conferences/room-x", "GET"),  # FastAPI's GET routes do not answer HEAD
    ("TRACE", "/metrics", "GET"),
    ("POST", "/v1/stream", "GET"),
    ("DELETE", "/openapi.json", "GET, HEAD"),  # a Starlette route: GET there answers HEAD too
])
async def test_a_405_is_problem_json_with_allow(client: httpx.AsyncClient, method: str, path: str,
                                                allow: str) -> None:
    """A method the path does not have: 405 problem JSON whose Allow lists every method of that path."""
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    if method != "HEAD":
        assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == allow


async def test_streams_are_strings_naming_their_items_and_optional_parameters_are_never_null(
    client: httpx.AsyncClient,
) -> None:
    """An SSE 200 is a string schema with `x-sse-data` naming its messages' data (OpenAPI 3.1 has no itemSchema),
    and no optional parameter takes `null`."""
    spec = await spec_of(client)
    for path in ("/v1/stream", "/v1/conferences/{conference_id}/stream"):
        stream = spec["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
        assert set(stream) == {"schema", "x-sse-data"} and stream["schema"]["type"] == "string"
    for item in spec["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                assert "null" not in str(parameter["schema"]), parameter
    header = next(p for p in spec["paths"]["/v1/stream"]["get"]["parameters"] if p["name"] == "Last-Event-ID")
    assert header["schema"]["type"] == "integer" and header["schema"]["maximum"] == 2**63 - 1
