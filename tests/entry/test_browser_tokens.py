"""Browser tokens (API.md §7): POST /v1/tokens mints them from an API key, they work as Bearer within their
scopes, and the SSE endpoints alone take them as `?access_token=`, where an API key is refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.entry.app import create_app
from confctl.entry.browser_tokens import mint
from confctl.entry.settings import ApiKey
from tests.e2e.support import KEYS as E2E_KEYS
from tests.e2e.support import build_stack
from tests.entry.conftest import KEYS, FixedClock, settings
from tests.support.sse import live_server, open_stream
from tests.support.twilio_forms import post_signed, voice

CUSTOMER = "CA" + "1" * 32
ROOM = f"room-{CUSTOMER}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mint_token(client: httpx.AsyncClient, key: str = KEYS["admin"], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/tokens", json=body or None, headers=bearer(key))
    assert response.status_code == 201, response.text
    minted: dict[str, Any] = response.json()
    return minted


def expires_in(minted: dict[str, Any]) -> float:
    return datetime.fromisoformat(minted["expires_at"]).timestamp() - time.time()


async def test_a_token_has_the_keys_scopes_and_a_short_life_by_default(client: httpx.AsyncClient) -> None:
    """Without a body, the token gets all of the key's scopes for CONFCTL_TOKEN_TTL_S (300 s), is not cacheable,
    and names the key as its subject."""
    response = await client.post("/v1/tokens")
    assert response.status_code == 201, response.text
    minted = response.json()
    assert set(minted) == {"token", "expires_at", "scopes"}
    assert minted["scopes"] == ["read", "control", "supervise"]
    assert 295 <= expires_in(minted) <= 301
    assert datetime.fromisoformat(minted["expires_at"]).tzinfo is not None
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(minted["token"], options={"verify_signature": False})
    assert claims["sub"] == "admin" and claims["exp"] - claims["iat"] == 300
    assert KEYS["admin"] not in minted["token"]


async def test_a_token_works_as_bearer_within_its_scopes(client: httpx.AsyncClient) -> None:
    """A read-only token can read and is refused (403 forbidden) a command; asking a shorter life is honoured."""
    minted = await mint_token(client, scopes=["read"], ttl_s=60)
    assert minted["scopes"] == ["read"] and 55 <= expires_in(minted) <= 61
    assert (await client.get("/v1/conferences", headers=bearer(minted["token"]))).status_code == 200
    refused = await client.post(f"/v1/conferences/{ROOM}/end", headers=bearer(minted["token"]))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


async def test_scopes_beyond_the_keys_are_refused(client: httpx.AsyncClient) -> None:
    """A key asking for a scope it lacks gets 403 forbidden; an unknown scope or a life beyond 24 h is 422."""
    more = await client.post("/v1/tokens", json={"scopes": ["read", "control"]}, headers=bearer(KEYS["reader"]))
    assert more.status_code == 403 and more.json()["code"] == "forbidden"
    assert "control" in more.json()["detail"]
    unknown = await client.post("/v1/tokens", json={"scopes": ["admin"]})
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_request"
    beyond_any = await client.post("/v1/tokens", json={"ttl_s": 86_401})
    assert beyond_any.status_code == 422 and beyond_any.json()["code"] == "invalid_request"


async def test_a_longer_life_than_the_operator_allows_is_cut_down(client: httpx.AsyncClient) -> None:
    """A ttl_s beyond CONFCTL_TOKEN_MAX_TTL_S (3600 s) gets a token living that long; expires_at says so."""
    assert 3595 <= expires_in(await mint_token(client, ttl_s=3600)) <= 3601
    assert 3595 <= expires_in(await mint_token(client, ttl_s=7200)) <= 3601


async def test_only_an_api_key_mints(client: httpx.AsyncClient) -> None:
    """No credential is 401; a browser token cannot mint the next one (403), so none outlives its expiry."""
    minted = await mint_token(client)
    assert (await client.post("/v1/tokens", headers={"Authorization": ""})).status_code == 401
    again = await client.post("/v1/tokens", headers=bearer(minted["token"]))
    assert again.status_code == 403 and again.json()["code"] == "forbidden"


async def test_expired_forged_and_revoked_tokens_are_401(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """An expired token, one with its claims altered, and one whose API key was rotated are all 401 unauthorized."""
    admin = next(k for k in settings().api_keys if k.name == "admin")
    expired = mint(admin, ["read"], 60, time.time() - 120).token
    answer = await client.get("/v1/conferences", headers=bearer(expired))
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert "expired" in answer.json()["detail"]
    good = (await mint_token(client, key=KEYS["reader"]))["token"]
    claims = jwt.decode(good, options={"verify_signature": False}) | {"scope": "read control supervise"}
    header, _, signature = good.split(".")
    forged = ".".join([header, jwt.encode(claims, "x" * 32, algorithm="HS256").split(".")[1], signature])
    assert (await client.post(f"/v1/conferences/{ROOM}/end", headers=bearer(forged))).status_code == 401
    assert (await client.get("/v1/conferences", headers=bearer("a.b.c"))).status_code == 401
    rotated = settings().model_copy(update={"api_keys": [
        ApiKey(name="reader", key="reader-key-rotated-1", scopes=["read"])]})
    other = create_app(rotated, engine=engine, clock=FixedClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://testserver") as c:
        assert (await c.get("/v1/conferences", headers=bearer(good))).status_code == 401


async def test_another_replica_accepts_the_token(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Tokens are stateless: a second app with the same CONFCTL_API_KEYS accepts a token the first one minted."""
    minted = await mint_token(client, key=KEYS["reader"])
    replica = create_app(settings(), engine=engine, clock=FixedClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=replica), base_url="http://testserver") as c:
        assert (await c.get("/v1/conferences", headers=bearer(minted["token"]))).status_code == 200


async def test_access_token_is_refused_outside_sse_and_an_api_key_is_refused_in_it(
    client: httpx.AsyncClient,
) -> None:
    """Only the SSE endpoints read `?access_token=`; there an API key is 401 (naming POST /v1/tokens), a token
    without `read` is 403, a bad or expired one 401."""
    minted = await mint_token(client)
    no_header = {"Authorization": ""}
    elsewhere = await client.get("/v1/conferences", params={"access_token": minted["token"]}, headers=no_header)
    assert elsewhere.status_code == 401
    for path in (f"/v1/conferences/{ROOM}/stream", "/v1/stream"):
        key_in_url = await client.get(path, params={"access_token": KEYS["admin"]}, headers=no_header)
        assert key_in_url.status_code == 401, key_in_url.text
        assert key_in_url.json()["code"] == "unauthorized" and "POST /v1/tokens" in key_in_url.json()["detail"]
        # Also alongside a valid header: the key has leaked into the URL either way.
        assert (await client.get(path, params={"access_token": KEYS["admin"]})).status_code == 401
    control_only = await mint_token(client, key=KEYS["controller"])
    lacks_read = await client.get("/v1/stream", params={"access_token": control_only["token"]}, headers=no_header)
    assert lacks_read.status_code == 403 and lacks_read.json()["code"] == "forbidden"
    admin = next(k for k in settings().api_keys if k.name == "admin")
    expired = mint(admin, ["read"], 60, time.time() - 61).token
    for bad in ("not-a-token", expired):
        answer = await client.get("/v1/stream", params={"access_token": bad}, headers=no_header)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    missing = await client.get(f"/v1/conferences/{ROOM}/stream", params={"access_token": minted["token"]},
                               headers=no_header)
    assert missing.status_code == 404  # authenticated by the token; the conference does not exist


@pytest.fixture
async def live_client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credential on confctl behind a real uvicorn server (SSE needs one)."""
    app = create_app(settings().model_copy(update={"sse_poll_s": 60.0}), engine=engine, clock=FixedClock())
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
            yield c
    finally:
        await app.state.container.live.aclose()


async def test_sse_streams_to_a_browser_token_in_the_query(live_client: httpx.AsyncClient) -> None:
    """With `?access_token=<token>` and no header, both feeds stream the stored events."""
    await post_signed(live_client, "/twilio/voice", voice(CUSTOMER).params)
    minted = await mint_token(live_client, key=KEYS["reader"])
    async with open_stream(live_client, f"/v1/conferences/{ROOM}/stream", access_token=minted["token"]) as feed:
        (created,) = await feed.events(1)
        assert created.event == "conference.created"
    async with open_stream(live_client, "/v1/stream", access_token=minted["token"]) as feed:
        (created,) = await feed.events(1)
        assert created.json()["conference_id"] == ROOM


async def test_a_tokens_commands_carry_the_api_keys_name_as_actor(engine: AsyncEngine) -> None:
    """A command sent with a browser token is stored with the minting API key's name as its actor."""
    async with build_stack(engine) as stack:
        _, room = await stack.inbound_call()
        minted = await mint_token(stack.api, key=E2E_KEYS["controller"], scopes=["control"])
        held = await stack.api.patch(f"/v1/conferences/{room}/participants/customer", json={"hold": True},
                                     headers=bearer(minted["token"]))
        assert held.status_code == 200, held.text
        await stack.settle()
        events = await stack.events(room)
        requested = [e for e in events if e["type"] == "participant.update_requested"]
        assert [e["actor"] for e in requested] == ["controller"], events
