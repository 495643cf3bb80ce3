"""Twilio Voice access tokens (API.md §7): POST /v1/agents/{identity}/voice-token signs, with the configured API
key and secret, a JWT whose VoiceGrant lets `client:{identity}` receive calls and place them via the TwiML app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.twilio_forms import ACCOUNT_SID

API_KEY = "SK" + "b" * 32
API_SECRET = "voice-api-secret-0123456789abcdef"
APP_SID = "AP" + "c" * 32
VOICE = {"twilio_api_key": API_KEY, "twilio_api_secret": API_SECRET, "twilio_twiml_app_sid": APP_SID}


@pytest.fixture
async def voice_client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client on an app configured for Voice access tokens."""
    app = create_app(settings().model_copy(update=VOICE), engine=engine, clock=FixedClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 headers={"Authorization": f"Bearer {KEYS['admin']}"}) as c:
        yield c


async def test_the_token_is_a_voice_grant_for_the_identity_signed_with_the_api_secret(
    voice_client: httpx.AsyncClient,
) -> None:
    """The JWT verifies with the API secret; issuer the API key, subject the account, the identity, incoming
    allowed, outgoing through the TwiML app, living CONFCTL_VOICE_TOKEN_TTL_S (3600 s) from now."""
    response = await voice_client.post("/v1/agents/alice.smith-2/voice-token")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["identity"] == "alice.smith-2" and response.headers["cache-control"] == "no-store"
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "HS256" and header["cty"] == "twilio-fpa;v=1"
    claims = jwt.decode(body["token"], API_SECRET, algorithms=["HS256"])
    assert claims["iss"] == API_KEY and claims["sub"] == ACCOUNT_SID
    assert claims["grants"] == {"identity": "alice.smith-2", "voice": {
        "incoming": {"allow": True}, "outgoing": {"application_sid": APP_SID}}}
    assert claims["exp"] - claims["nbf"] == 3600 and abs(claims["nbf"] - time.time()) < 5
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == claims["exp"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(body["token"], "another-secret-0123456789abcdefgh", algorithms=["HS256"])


async def test_a_shorter_life_can_be_asked_and_a_browser_token_may_ask(voice_client: httpx.AsyncClient) -> None:
    """`ttl_s` sets the token's life (Twilio's 24 h at most); a browser token with `control` may mint one."""
    minted = (await voice_client.post("/v1/tokens", json={"scopes": ["control"]})).json()
    response = await voice_client.post("/v1/agents/bob/voice-token", json={"ttl_s": 600},
                                       headers={"Authorization": f"Bearer {minted['token']}"})
    assert response.status_code == 201, response.text
    claims = jwt.decode(response.json()["token"], API_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["nbf"] == 600
    too_long = await voice_client.post("/v1/agents/bob/voice-token", json={"ttl_s": 86_401})
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_request"


@pytest.mark.parametrize("identity", ["has space", "x" * 122, "émile", "a:b", "semi;colon", "a%00b"])
async def test_an_identity_twilio_cannot_dial_as_client_name_is_422(
    voice_client: httpx.AsyncClient, identity: str
) -> None:
    """An identity that client:NAME cannot carry (API.md §4's rule) is 422 invalid_request, saying the rule."""
    response = await voice_client.post(f"/v1/agents/{identity}/voice-token")
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    assert "121" in response.json()["detail"]


async def test_the_control_scope_is_needed(voice_client: httpx.AsyncClient) -> None:
    """A key without `control` is 403 forbidden; no key is 401."""
    reader = await voice_client.post("/v1/agents/alice/voice-token",
                                     headers={"Authorization": f"Bearer {KEYS['reader']}"})
    assert reader.status_code == 403 and reader.json()["code"] == "forbidden"
    anonymous = await voice_client.post("/v1/agents/alice/voice-token", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_without_the_settings_it_says_what_to_configure(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Unconfigured: 503 voice_not_configured naming each missing setting; a SID of the wrong kind is named too."""
    response = await client.post("/v1/agents/alice/voice-token")
    assert response.status_code == 503 and response.json()["code"] == "voice_not_configured"
    for name in ("CONFCTL_TWILIO_API_KEY", "CONFCTL_TWILIO_API_SECRET", "CONFCTL_TWILIO_TWIML_APP_SID"):
        assert name in response.json()["detail"]
    wrong = create_app(settings().model_copy(update=VOICE | {"twilio_api_key": ACCOUNT_SID}), engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrong), base_url="http://testserver") as c:
        answer = await c.post("/v1/agents/alice/voice-token", headers={"Authorization": f"Bearer {KEYS['admin']}"})
    assert answer.status_code == 503 and "SK" in answer.json()["detail"]
