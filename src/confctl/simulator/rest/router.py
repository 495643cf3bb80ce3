"""Dispatch of `/2010-04-01/Accounts/{AccountSid}/…`: auth, fault injection, routing, errors, request log.

Routing works on the raw (still percent-encoded) path, so a participant label containing `/` or a space
can travel in the path as Twilio allows; each segment is decoded after matching.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from confctl.simulator.model.errors import TwilioApiError, not_found
from confctl.simulator.rest import operations as ops
from confctl.simulator.rest.forms import Form

if TYPE_CHECKING:
    from confctl.simulator.app import Simulator, SimulatorConfig

PREFIX = "/2010-04-01/Accounts/"
_SEG = r"(?P<{}>[^/]+)"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    operation_id: str
    pattern: re.Pattern[str]
    handler: Callable[[ops.Request], ops.Result]


def _route(method: str, operation_id: str, template: str, handler: Callable[[ops.Request], ops.Result]) -> Route:
    regex = re.sub(r"\{(\w+)\}", lambda m: _SEG.format(m.group(1)), template.replace(".json", r"\.json"))
    return Route(method, operation_id, re.compile(f"^{regex}$"), handler)


ROUTES = (
    _route("POST", "CreateCall", "{AccountSid}/Calls.json", ops.create_call),
    _route("GET", "ListCall", "{AccountSid}/Calls.json", ops.list_calls),
    _route("GET", "FetchCall", "{AccountSid}/Calls/{Sid}.json", ops.fetch_call),
    _route("POST", "UpdateCall", "{AccountSid}/Calls/{Sid}.json", ops.update_call),
    _route("GET", "ListConference", "{AccountSid}/Conferences.json", ops.list_conferences),
    _route("GET", "FetchConference", "{AccountSid}/Conferences/{Sid}.json", ops.fetch_conference),
    _route("POST", "UpdateConference", "{AccountSid}/Conferences/{Sid}.json", ops.update_conference),
    _route(
        "POST",
        "CreateParticipant",
        "{AccountSid}/Conferences/{ConferenceSid}/Participants.json",
        ops.create_participant,
    ),
    _route(
        "GET", "ListParticipant", "{AccountSid}/Conferences/{ConferenceSid}/Participants.json", ops.list_participants
    ),
    _route(
        "GET",
        "FetchParticipant",
        "{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json",
        ops.fetch_participant,
    ),
    _route(
        "POST",
        "UpdateParticipant",
        "{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json",
        ops.update_participant,
    ),
    _route(
        "DELETE",
        "DeleteParticipant",
        "{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json",
        ops.delete_participant,
    ),
    _route(
        "GET",
        "ListConferenceRecording",
        "{AccountSid}/Conferences/{ConferenceSid}/Recordings.json",
        ops.list_recordings,
    ),
    _route(
        "GET",
        "FetchConferenceRecording",
        "{AccountSid}/Conferences/{ConferenceSid}/Recordings/{Sid}.json",
        ops.fetch_recording,
    ),
    _route(
        "POST",
        "UpdateConferenceRecording",
        "{AccountSid}/Conferences/{ConferenceSid}/Recordings/{Sid}.json",
        ops.update_recording,
    ),
)

_FAULT_CODES = {429: 20429, 500: 20500, 503: 20503}


def error_response(error: TwilioApiError) -> JSONResponse:
    """Twilio's error body."""
    body = {
        "code": error.code,
        "message": error.message,
        "more_info": f"https://www.twilio.com/docs/errors/{error.code}",
        "status": error.status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else None
    return JSONResponse(body, status_code=error.status, headers=headers)


def _authenticated(request: HttpRequest, config: SimulatorConfig) -> bool:
    """Basic auth as Twilio takes it: the account SID with its auth token, or one of its API keys (SK…) with
    that key's secret."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    secret = config.auth_token if user == config.account_sid else config.api_keys.get(user)
    return secret is not None and hmac.compare_digest(password.encode(), secret.encode())


def _match(method: str, tail: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        found = route.pattern.match(tail)
        if found and route.method == method:
            return route, {name: unquote(value) for name, value in found.groupdict().items()}
    return None


async def handle(simulator: Simulator, request: HttpRequest) -> Response:
    """Serve one REST request and append it to the request log."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    tail = raw_path.decode("latin-1")[len(PREFIX) :]
    body = (await request.body()).decode("utf-8", errors="replace")
    form = Form.parse(body) if request.method in ("POST", "PUT") else Form([])
    query = Form.parse(request.url.query)
    entry: dict[str, object] = {
        "method": request.method,
        "path": request.url.path,
        "query": query.as_lists(),
        "form": form.as_lists(),
        "operation": None,
        "status": None,
    }
    simulator.requests.append(entry)
    response = _serve(simulator, request, tail, form, query, entry)
    entry["status"] = response.status_code
    return response


def _serve(
    simulator: Simulator, request: HttpRequest, tail: str, form: Form, query: Form, entry: dict[str, object]
) -> Response:
    config = simulator.config
    if not _authenticated(request, config):
        return error_response(TwilioApiError(401, 20003, "Authenticate"))
    matched = _match(request.method, tail)
    if matched is None:
        return error_response(not_found(request.url.path))
    route, path = matched
    entry["operation"] = route.operation_id
    if path["AccountSid"] != config.account_sid:
        return error_response(not_found(request.url.path))
    if simulator.faults.rest_error():
        status = simulator.faults.rest_error_status
        return error_response(TwilioApiError(status, _FAULT_CODES.get(status, 20500), "Injected fault"))
    call = ops.Request(simulator.world, config.account_sid, path, form, query)
    try:
        status, payload = simulator.runtime.apply(lambda: route.handler(call))
    except TwilioApiError as error:
        return error_response(error)
    if payload is None:
        return Response(status_code=status)
    return JSONResponse(payload, status_code=status)
