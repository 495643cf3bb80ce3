"""CORS (API.md §7): only the origins in CONFCTL_CORS_ORIGINS get CORS headers, none by default, and Twilio's
webhooks work the same with it on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from confctl.entry.settings import Settings
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.twilio_forms import post_signed, voice

APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"}


@pytest.fixture
async def cors_client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app that allows APP_ORIGIN only."""
    app = create_app(settings().model_copy(update={"cors_origins": [APP_ORIGIN]}), engine=engine,
                     clock=FixedClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def test_a_preflight_from_an_allowed_origin_succeeds(cors_client: httpx.AsyncClient) -> None:
    """OPTIONS from an allowed origin is 200 with the origin, the API's methods and request headers allowed."""
    response = await cors_client.options("/v1/conferences/room-x/transfers",
                                         headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key", "last-event-id"} <= set(allowed.split(", "))
    assert "access-control-allow-credentials" not in response.headers


async def test_a_preflight_from_another_origin_gets_no_allow_origin(cors_client: httpx.AsyncClient) -> None:
    """OPTIONS from an origin not in the list is refused, with no Access-Control-Allow-Origin."""
    response = await cors_client.options("/v1/conferences", headers={"Origin": OTHER_ORIGIN, **PREFLIGHT})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_answers_to_an_allowed_origin_expose_what_a_client_reads(cors_client: httpx.AsyncClient) -> None:
    """A GET from an allowed origin carries the origin and the exposed headers, also on a 401 problem."""
    ok = await cors_client.get("/v1/conferences",
                               headers={"Origin": APP_ORIGIN, "Authorization": f"Bearer {KEYS['admin']}"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")}
    assert {"idempotent-replayed", "location", "x-request-id"} <= exposed
    refused = await cors_client.get("/v1/conferences", headers={"Origin": APP_ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == APP_ORIGIN
    other = await cors_client.get("/v1/conferences", headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in other.headers


async def test_twilio_webhooks_are_untouched_by_cors(cors_client: httpx.AsyncClient) -> None:
    """A signed voice webhook (no Origin, as Twilio sends it) is answered with TwiML and no CORS header."""
    response = await post_signed(cors_client, "/twilio/voice", voice("CA" + "1" * 32).params)
    assert response.status_code == 200 and "<Conference" in response.text
    assert not any(name.startswith("access-control-") for name in response.headers)


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    """Without CONFCTL_CORS_ORIGINS no answer, preflight or not, carries a CORS header."""
    preflight = await client.options("/v1/conferences", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    plain = await client.get("/v1/conferences", headers={"Origin": APP_ORIGIN})
    for response in (preflight, plain):
        assert not any(name.startswith("access-control-") for name in response.headers), response.headers


def test_cors_origins_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFCTL_CORS_ORIGINS is a JSON list; a trailing slash is dropped, empty means none, a path is an error."""
    monkeypatch.setenv("CONFCTL_CORS_ORIGINS", '["https://app.example.com/", "http://localhost:5173"]')
    assert Settings(_env_file=None).cors_origins == [APP_ORIGIN, "http://localhost:5173"]  # type: ignore[call-arg]
    monkeypatch.setenv("CONFCTL_CORS_ORIGINS", "")
    assert Settings(_env_file=None).cors_origins == []  # type: ignore[call-arg]
    monkeypatch.setenv("CONFCTL_CORS_ORIGINS", '["https://app.example.com/console"]')
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(_env_file=None)  # type: ignore[call-arg]
