"""Schemathesis over every operation of the OpenAPI document: no 5xx, answers as documented, errors as
problem+json.

confctl, with the Twilio simulator as its Twilio, is served by uvicorn on a loopback port in a thread of its
own (its own event loop and engine on the test database): schemathesis' checks are synchronous and some of
them re-send a request (without the API key, for instance), so they need a real server to reach, not an
in-process transport. Its lazy `from_fixture` loader relies on pytest internals that pytest 9 no longer has,
so the document is loaded at import instead (and checked to be the one served).

Every operation is fuzzed twice: with generated ids (mostly 404s), and on a live conference (commands reach
the domain and the simulator). Bounded: EXAMPLES per operation, derandomized (the same cases every run), no
deadline (the machine is shared); the whole file takes about 45 s here. The SSE feeds are fuzzed too: they
close after SSE_MAX_S, so that a generated request ends (their messages are checked in test_openapi_valid.py).
The /twilio/* webhooks need Twilio's signature: fuzzed requests get their documented 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import negative_data_rejection, positive_data_acceptance, response_schema_conformance
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine
from confctl.entry.app import create_app
from confctl.entry.settings import Settings
from tests.e2e.support import KEYS, build_stack
from tests.e2e.support import settings as stack_settings

AUTH = {"Authorization": f"Bearer {KEYS['admin']}"}
SSE_MAX_S = 0.2
EXAMPLES = 50


def errors_are_problems(ctx: Any, response: schemathesis.Response, case: Case) -> None:
    """A schemathesis check: every 4xx and 5xx is `application/problem+json` with its status in the body."""
    if response.status_code < 400:
        return
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    assert media_type == "application/problem+json", (response.status_code, media_type)
    if response.content:  # an answer to HEAD has none
        body = json.loads(response.content)
        assert body["status"] == response.status_code and body["code"] and body["type"], body


class _ThreadServer(uvicorn.Server):
    """uvicorn that leaves signals to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# Configured for Twilio Voice access tokens, so POST /v1/agents/{identity}/voice-token is fuzzed past its 503.
VOICE = {"twilio_api_key": "SK" + "b" * 32, "twilio_api_secret": "fuzz-api-secret-0123456789abcdef",
         "twilio_twiml_app_sid": "AP" + "c" * 32}


def fuzz_settings() -> Settings:
    return stack_settings().model_copy(update={"sse_max_s": SSE_MAX_S, **VOICE})


@dataclass(frozen=True)
class Live:
    """Where confctl is served, and a conference in it with the customer's call up."""

    base_url: str
    room: str


@contextlib.contextmanager
def served(database_url: str) -> Iterator[Live]:
    """confctl (and the simulator as its Twilio) on the test database, served from a thread with its own loop."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    holder: dict[str, Any] = {}

    async def run() -> None:
        engine = create_engine(database_url, pool_size=2)
        try:
            # With the Twilio simulator behind it, so that commands go as far as they would in production.
            async with build_stack(engine, sse_max_s=SSE_MAX_S, **VOICE) as stack:
                holder["room"] = (await stack.inbound_call())[1]  # before serving: nothing else runs yet
                config = uvicorn.Config(stack.app, log_config=None, lifespan="on", timeout_graceful_shutdown=1)
                holder["server"] = server = _ThreadServer(config)
                await server.serve(sockets=[sock])
        finally:
            await engine.dispose()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    for _ in range(1000):
        server = holder.get("server")
        if server is not None and server.started:
            break
        if not thread.is_alive():
            break
        threading.Event().wait(0.01)
    try:
        assert holder.get("server") is not None and holder["server"].started, "uvicorn did not start in 10 s"
        yield Live(f"http://127.0.0.1:{port}", holder["room"])
    finally:
        if "server" in holder:
            holder["server"].should_exit = True
        thread.join(timeout=10)
        sock.close()


# The document the server serves is built by the same code from the same settings: it is loaded at import, so
# that pytest collects one test per operation; `test_the_fuzzed_document_is_the_served_one` checks they agree.
SPEC = create_app(fuzz_settings()).openapi()
schema = schemathesis.openapi.from_dict(SPEC)
# The same cases every run. Unknown query parameters are not generated: confctl ignores them, as most HTTP APIs
# do (a cache-buster must not break a request).
schema.config.generation.update(deterministic=True, allow_extra_parameters=False)
SSE_PATHS = {path for path, item in SPEC["paths"].items()
             for status, response in item.get("get", {}).get("responses", {}).items()
             if str(status) == "200" and "text/event-stream" in response.get("content", {})}


@pytest.fixture(scope="module")
def live(migrated_engine: AsyncEngine, database_url: str) -> Iterator[Live]:
    """confctl running on the test database for the whole module."""
    with served(database_url) as running:
        yield running


def tolerated(case: Case) -> list[Any]:
    """The checks that do not apply to `case`, each for a documented reason."""
    excluded = []
    # A cursor is opaque (a next_cursor this API returned): a generated one is rightly refused, though its
    # schema can only say `string`.
    if (case.query or {}).get("cursor") is not None:
        excluded.append(positive_data_acceptance)
    # An empty Last-Event-ID is taken as none (as documented), for clients that send the header empty.
    if (case.headers or {}).get("Last-Event-ID") == "":
        excluded.append(negative_data_rejection)
    # An SSE body is a string in OpenAPI 3.1 (no itemSchema), which schemathesis would apply to each event:
    # test_openapi_valid.py checks each message's data against the schema that `x-sse-data` names instead.
    if case.path in SSE_PATHS:
        excluded.append(response_schema_conformance)
    return excluded


def test_the_fuzzed_document_is_the_served_one(live: Live) -> None:
    """What the fuzz reads is what confctl serves at /openapi.json."""
    with urllib.request.urlopen(f"{live.base_url}/openapi.json", timeout=10) as response:
        assert json.loads(response.read()) == SPEC


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Case, live: Live) -> None:
    """Generated requests never get a 5xx; every answer matches its documented status, media type and schema;
    every error is problem+json."""
    case.call_and_validate(base_url=live.base_url, headers=AUTH, additional_checks=[errors_are_problems],
                           excluded_checks=tolerated(case), timeout=10)


@schema.include(path_regex="conference_id").parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_on_a_live_conference_answers_as_documented(case: Case, live: Live) -> None:
    """The same, on a conference with a caller in it (commands reach the domain and the simulator, not a 404).

    Refusals by the domain's rules (a coach for an agent, hold music without hold) are 422s that no JSON
    schema states, so a schema-valid request may be refused here.
    """
    case.path_parameters["conference_id"] = live.room
    if "participant" in case.path_parameters:
        case.path_parameters["participant"] = "customer"
    excluded = [positive_data_acceptance, *tolerated(case)]
    case.call_and_validate(base_url=live.base_url, headers=AUTH, additional_checks=[errors_are_problems],
                           excluded_checks=excluded, timeout=10)
