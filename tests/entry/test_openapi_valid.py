"""The served OpenAPI document is valid OpenAPI 3.1 and says what the API does: the Idempotency-Key header where
it is honoured, problem+json errors whose `code` enum is every code confctl emits, date-time timestamps, and
request body examples that a live conference accepts."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from openapi_spec_validator import validate
from sqlalchemy.ext.asyncio import AsyncEngine

import confctl
import confctl.entry as entry
from confctl.domain import errors as de
from confctl.entry import errors
from tests.e2e.support import Stack, build_stack

SRC = Path(confctl.__file__).parent
PROBLEM_CALLS = {"ApiProblem", "problem", "problem_body"}


async def spec_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


async def test_the_served_document_passes_openapi_spec_validator(client: httpx.AsyncClient) -> None:
    """`openapi-spec-validator` finds nothing wrong with /openapi.json as OpenAPI 3.1 (no 3.2 `itemSchema`)."""
    spec = await spec_of(client)
    assert spec["openapi"].startswith("3.1.")
    validate(spec)  # raises on the first error
    assert "itemSchema" not in str(spec)


async def test_sse_streams_are_strings_that_name_their_event_schema(client: httpx.AsyncClient) -> None:
    """An SSE 200 is `text/event-stream` with a string schema; `x-sse-data` names the schema of each message's
    `data`, and that schema is in the components for generators."""
    spec = await spec_of(client)
    for path in ("/v1/stream", "/v1/conferences/{conference_id}/stream"):
        stream = spec["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
        assert stream["schema"]["type"] == "string" and "LiveEvent" in stream["schema"]["description"]
        assert stream["x-sse-data"] == {"$ref": "#/components/schemas/LiveEvent"}
    assert "conference_id" in spec["components"]["schemas"]["LiveEvent"]["properties"]


def entry_routes() -> Iterator[APIRoute]:
    """Every route of every router in confctl.entry (the routers as declared, before the app includes them)."""
    for module in pkgutil.iter_modules(entry.__path__):
        for value in vars(importlib.import_module(f"confctl.entry.{module.name}")).values():
            if isinstance(value, APIRouter):
                yield from (r for r in value.routes if isinstance(r, APIRoute))


def _honours_idempotency(route: APIRoute) -> bool:
    """The route's handler runs its command through `idempotent` (which reads the Idempotency-Key header)."""
    return "idempotent(" in inspect.getsource(route.endpoint)


async def test_idempotency_key_is_declared_exactly_where_it_is_honoured(client: httpx.AsyncClient) -> None:
    """Every operation whose handler honours Idempotency-Key declares it as an optional header of 1 to 255
    characters, and no other operation does."""
    honoured = {r.operation_id for r in entry_routes() if _honours_idempotency(r)}
    assert {"addParticipant", "startTransfer", "announce"} <= honoured
    declared = set()
    for _, _, operation in operations(await spec_of(client)):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "Idempotency-Key":
                assert parameter["in"] == "header" and not parameter.get("required", False)
                schema = parameter["schema"]
                assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 255), parameter
                declared.add(operation["operationId"])
    assert declared == honoured


def _emitted_codes() -> set[str]:
    """Every problem `code` the source can answer with: each domain error's, each literal given to ApiProblem /
    problem / problem_body anywhere in src/confctl, and the codes of errors.py's status and Twilio maps."""
    codes = set()
    pending = list(de.DomainError.__subclasses__())
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    for file in SRC.rglob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in PROBLEM_CALLS and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                    codes.add(node.args[1].value)
                code = next((k.value for k in node.keywords if k.arg == "code"), None)
                if name in PROBLEM_CALLS and isinstance(code, ast.Constant):
                    codes.add(code.value)
                # errors.py's fallbacks: `HTTP_CODES.get(status, "http_error")`, `TWILIO_CODES.get(…, (502, …))`
                owner = getattr(getattr(node.func, "value", None), "id", "")
                if name == "get" and owner.endswith("_CODES") and len(node.args) == 2:
                    codes.update(leaf.value for leaf in ast.walk(node.args[1])
                                 if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str))
    codes.update(errors.HTTP_CODES.values())
    codes.update(code for _, code in errors.TWILIO_CODES.values())
    return codes


async def test_problem_code_enum_is_every_code_confctl_emits(client: httpx.AsyncClient) -> None:
    """The Problem schema's `code` is an enum, and its values are exactly the codes found in the source."""
    code = (await spec_of(client))["components"]["schemas"]["Problem"]["properties"]["code"]
    assert "enum" in code, code
    emitted = _emitted_codes()
    assert {"conference_not_found", "unauthorized", "twilio_error", "http_error", "not_found"} <= emitted
    assert set(code["enum"]) == emitted, (emitted - set(code["enum"]), set(code["enum"]) - emitted)


async def test_problem_schema_states_the_twilio_fields(client: httpx.AsyncClient) -> None:
    """Problem documents `twilio_code` and `twilio_status` (integers or null, present on Twilio's refusals) and a
    `type` URI; every error response is application/problem+json with it."""
    spec = await spec_of(client)
    problem = spec["components"]["schemas"]["Problem"]
    for name in ("twilio_code", "twilio_status"):
        assert {b.get("type") for b in problem["properties"][name]["anyOf"]} == {"integer", "null"}, name
        assert name not in problem["required"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem["properties"]["type"]["format"] == "uri-reference"


def _date_time_fields(schemas: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            if field == "at" or field.endswith("_at"):
                yield name, field, prop


async def test_every_timestamp_is_a_date_time(client: httpx.AsyncClient) -> None:
    """Every `at` and `*_at` property of every schema is a string of format date-time (or null)."""
    fields = list(_date_time_fields((await spec_of(client))["components"]["schemas"]))
    assert len(fields) >= 10
    for name, field, prop in fields:
        branches = [(b.get("type"), b.get("format")) for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        assert branches == [("string", "date-time")], (name, field, prop)


def _request_examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(method, path, example name, body) for every request body example: the media type's `examples` and
    `example`, and the `examples` of the body's schema (what Swagger UI prefills from when the others are absent)."""
    schemas = spec["components"]["schemas"]
    for path, method, operation in operations(spec):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            for name, example in media.get("examples", {}).items():
                yield method, path, name, example["value"]
            if "example" in media:
                yield method, path, "example", media["example"]
            schema = media.get("schema", {})
            if "$ref" in schema:
                schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
            for index, example in enumerate(schema.get("examples", [])):
                yield method, path, f"schema[{index}]", example


async def _scene(stack: Stack) -> str:
    """A conference as the examples expect it: the customer, `agent-alice` and a monitoring `supervisor-sam`."""
    _, room = await stack.inbound_call()
    for body in ({"to": "client:alice", "role": "agent", "label": "agent-alice"},
                 {"to": "client:sam", "role": "supervisor", "label": "supervisor-sam", "mode": "monitor"}):
        response = await stack.api.post(f"/v1/conferences/{room}/participants", json=body)
        assert response.status_code == 202, response.text
        await stack.settle()
    return room


def _target(body: dict[str, Any]) -> str:
    """The participant a PATCH example is meant for: supervision changes go to the supervisor."""
    return "supervisor-sam" if {"mode", "coach"} & set(body) else "agent-alice"


async def test_every_request_body_example_is_accepted_by_a_live_conference(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Each JSON body example of the document, sent to a conference with a caller, an agent and a supervisor,
    validates against its schema and is accepted (2xx), as the explorer's prefilled bodies must be."""
    spec = await spec_of(client)
    examples = list(_request_examples(spec))
    # The conference commands: each states its own examples (the token operations' bodies are all optional).
    with_body = {(m, p) for p, m, o in operations(spec) if "application/json" in o.get("requestBody", {})
                 .get("content", {}) and p.startswith("/v1/conferences/")}
    assert len(with_body) >= 5 and with_body <= {(m, p) for m, p, _, _ in examples}, "a body without an example"
    schemas = {"components": spec["components"]}
    async with build_stack(engine, record=True, twilio_api_key="SK" + "1" * 32, twilio_api_secret="secret",
                           twilio_twiml_app_sid="AP" + "1" * 32) as stack:
        for method, path, name, body in examples:
            media = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
            jsonschema.validate(body, {**media["schema"], **schemas})
            room = await _scene(stack)
            url = path.replace("{conference_id}", room).replace("{participant}", _target(body)).replace(
                "{identity}", "alice")
            response = await stack.api.request(method.upper(), url, json=body)
            assert response.status_code < 300, (method, path, name, body, response.text)
            await stack.settle()
        # A Twilio refusal, the one answer with the Twilio fields: as documented.
        room = await _scene(stack)
        await stack.set_faults(rest_error_rate=1.0, rest_error_status=400)
        refused = await stack.api.patch(f"/v1/conferences/{room}/participants/agent-alice", json={"muted": True})
        assert refused.status_code == 502 and isinstance(refused.json()["twilio_code"], int), refused.text
        assert refused.json()["twilio_status"] == 400
        jsonschema.validate(refused.json(), spec["components"]["schemas"]["Problem"],
                            format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("path", ["/v1/conferences/room-x", "/v1/nowhere"])
async def test_an_error_body_is_a_valid_problem(client: httpx.AsyncClient, path: str) -> None:
    """A real error answer validates against the documented Problem schema (enum and type format included)."""
    spec = await spec_of(client)
    response = await client.get(path)
    assert response.status_code == 404
    jsonschema.validate(response.json(), spec["components"]["schemas"]["Problem"],
                        format_checker=jsonschema.FormatChecker())


def _messages(body: str) -> Iterator[dict[str, str]]:
    """The SSE messages of a finished stream's body (comments and `retry:` alone left out)."""
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            if name in ("id", "event", "data"):
                fields[name] = fields.get(name, "") + value.removeprefix(" ")
        if "data" in fields:
            yield fields


async def test_sse_messages_carry_the_data_that_x_sse_data_names(engine: AsyncEngine) -> None:
    """Each message of both streams has an id, an event and, as `data`, JSON valid against the schema `x-sse-data`
    names (date-time formats included)."""
    async with build_stack(engine, sse_max_s=0.3) as stack:
        spec = await spec_of(stack.api)
        room = await _scene(stack)
        checked = 0
        for path in ("/v1/stream", "/v1/conferences/{conference_id}/stream"):
            stream = spec["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
            target = {**stream["x-sse-data"], "components": spec["components"]}
            response = await stack.api.get(path.replace("{conference_id}", room))  # ends after sse_max_s
            assert response.status_code == 200
            messages = list(_messages(response.text))
            assert len(messages) >= 3, response.text
            for message in messages:
                assert message["id"].isdigit() and message["event"], message
                jsonschema.validate(json.loads(message["data"]), target, format_checker=jsonschema.FormatChecker())
                checked += 1
        assert checked >= 6
