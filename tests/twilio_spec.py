"""Check HTTP requests and responses against Twilio's OpenAPI spec subset, with openapi-core.

`validate_request(method, url, headers, body)` and `validate_response(method, url, status, headers, body)`
raise openapi-core's validation error when the exchange is not what the spec documents. URLs may point
anywhere (the simulator, a test host): they are checked as if they had gone to https://api.twilio.com.
Paths stay percent-encoded, as sent.

Per `SOURCE.md`, response validation uses the spec with every enum schema made nullable (and `null` added to
its enum): Twilio sends `null` there (`reason_conference_ended` while a conference runs) although the spec
does not say so. Requests are checked against the spec unchanged.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

REPO_ROOT = Path(__file__).resolve().parents[1]
# A verbatim copy of shared/twilio/'s spec subset lives in tests/data (see its README), so any clone can run.
SPEC_PATH = Path(
    os.environ.get(
        "CONFCTL_TWILIO_SPEC",
        REPO_ROOT / "tests" / "data" / "twilio" / "twilio_api_v2010_conference_subset.json",
    )
)
TWILIO_HOST = "https://api.twilio.com"


class _Request:
    """openapi-core's Request protocol over raw HTTP parts."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> None:
        parts = urlsplit(url)
        self.host_url = TWILIO_HOST
        self.path = parts.path
        self.method = method.lower()
        self.body = body or None
        self.content_type = headers.get("content-type", "").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(parts.query, keep_blank_values=True)),
            header=Headers(headers),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    """openapi-core's Response protocol over raw HTTP parts."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes | None) -> None:
        self.status_code = status
        self.data = body or None
        self.headers = Headers(headers)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        # Twilio answers JSON only; a caller handing the request's headers by mistake still gets a check.
        if body and "json" not in content_type:
            content_type = "application/json"
        self.content_type = content_type


def _nullable_enums(spec: dict[str, Any]) -> dict[str, Any]:
    patched = copy.deepcopy(spec)
    for schema in patched["components"]["schemas"].values():
        if "enum" in schema:
            schema["nullable"] = True
            if None not in schema["enum"]:
                schema["enum"] = [*schema["enum"], None]
    return patched


@cache
def spec_dict() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return loaded


@cache
def _openapi(for_responses: bool) -> OpenAPI:
    spec = spec_dict()
    return OpenAPI.from_dict(_nullable_enums(spec) if for_responses else spec)


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in dict(headers).items()}


def validate_request(method: str, url: str, headers: Any, body: bytes | str | None) -> None:
    """Raise unless the request is one of the subset's operations with valid parameters and body."""
    raw = body.encode() if isinstance(body, str) else body
    _openapi(False).validate_request(_Request(method, url, _lower(headers), raw))


def validate_response(method: str, url: str, status: int, headers: Any, body: bytes | str | None) -> None:
    """Raise unless the response is what the spec documents for that operation and status."""
    raw = body.encode() if isinstance(body, str) else body
    request = _Request(method, url, {}, None)
    _openapi(True).validate_response(request, _Response(status, _lower(headers), raw))
