"""The read side of the control API: auth, problem JSON, paging, OpenAPI, health."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import create_engine
from confctl.entry.app import create_app
from tests.entry.conftest import KEYS, settings
from tests.support.twilio_forms import post_signed, voice


async def test_no_key_is_401_problem_json(client: httpx.AsyncClient) -> None:
    """Without a valid key every /v1 call is 401 with problem JSON."""
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-key-000000"}):
        response = await client.get("/v1/conferences", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "unauthorized" and set(body) >= {"type", "title", "status", "detail", "code"}


async def test_key_without_read_scope_is_403(client: httpx.AsyncClient) -> None:
    """A key that lacks `read` cannot read."""
    response = await client.get("/v1/conferences", headers={"Authorization": f"Bearer {KEYS['controller']}"})
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    ok = await client.get("/v1/conferences", headers={"Authorization": f"Bearer {KEYS['reader']}"})
    assert ok.status_code == 200


async def test_unknown_conference_is_404_conference_not_found(client: httpx.AsyncClient) -> None:
    """Every per-conference read says conference_not_found for an unknown id."""
    for suffix in ("", "/events", "/audibility"):
        response = await client.get(f"/v1/conferences/room-nope{suffix}")
        assert response.status_code == 404
        assert response.json()["code"] == "conference_not_found"


async def test_list_pages_newest_first_and_rejects_bad_input(client: httpx.AsyncClient) -> None:
    """Conferences list newest first with a cursor; a bad status, limit or cursor is 422, never 500."""
    for i in range(3):
        await post_signed(client, "/twilio/voice", voice(f"CA{i:032d}").params)
    first = (await client.get("/v1/conferences", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client.get("/v1/conferences", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    ids = [c["id"] for c in first["items"] + second["items"]]
    assert sorted(ids) == sorted(f"room-CA{i:032d}" for i in range(3)) and second["next_cursor"] is None
    assert (await client.get("/v1/conferences", params={"status": "init"})).json()["items"]
    assert (await client.get("/v1/conferences", params={"status": "completed"})).json()["items"] == []
    for params in ({"status": "bogus"}, {"limit": 0}, {"cursor": "%%%"}):
        response = await client.get("/v1/conferences", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


async def test_events_page_with_next_after(client: httpx.AsyncClient) -> None:
    """The history pages by version with next_after."""
    await post_signed(client, "/twilio/voice", voice("CA" + "5" * 32).params)
    page = (await client.get(f"/v1/conferences/room-CA{'5' * 32}/events", params={"limit": 1})).json()
    assert [e["type"] for e in page["items"]] == ["conference.created"] and page["next_after"] is None


async def test_openapi_has_operation_ids_summaries_and_response_models(client: httpx.AsyncClient) -> None:
    """Every operation in the OpenAPI document has an operationId, a summary and a typed 2xx response."""
    spec = (await client.get("/openapi.json")).json()
    seen = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("operationId"), (method, path)
            assert op.get("summary"), (method, path)
            seen.add(op["operationId"])
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            assert ok.get("content") or ok.get("description"), (method, path)
            if path.startswith("/v1"):
                assert "$ref" in str(ok["content"]), (method, path)
                # The SSE endpoints also take a browser token as ?access_token= (EventSource sends no headers).
                stream = path.endswith("/stream")
                assert op.get("security") == [{"HTTPBearer": []}, *([{"accessToken": []}] if stream else [])], \
                    (method, path)
    assert {"listConferences", "getConference", "listConferenceEvents", "getAudibility", "healthz", "readyz"} <= seen
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    """healthz answers while the process lives; readyz checks the database and migrations."""
    assert (await client.get("/healthz")).json()["status"] == "ok"
    assert (await client.get("/readyz")).json()["status"] == "ok"


async def test_readyz_is_503_on_a_database_without_migrations(engine: AsyncEngine) -> None:
    """A reachable database whose schema is not at head is not ready: 503 with the reason."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("DROP DATABASE IF EXISTS confctl_unmigrated"))
        await conn.execute(sa.text("CREATE DATABASE confctl_unmigrated"))
    url = engine.url.set(database="confctl_unmigrated")
    empty = create_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        app = create_app(settings(), engine=empty)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            response = await c.get("/readyz")
        assert response.status_code == 503
        assert response.json()["detail"] == "migrations are not at head"
    finally:
        await empty.dispose()


async def test_readyz_during_a_rolling_upgrade(engine: AsyncEngine) -> None:
    """A schema one migration behind is not ready; one a newer release migrated ahead (a revision this code does
    not know) is, so old replicas keep serving while the new ones roll out."""
    from confctl.adapters.database import head_revision, known_revisions, schema_ready

    older = sorted(known_revisions() - {head_revision()})
    assert older and not schema_ready(older[:1])
    assert not schema_ready([])
    assert schema_ready([str(head_revision())])
    assert schema_ready(["f00dfeed0000"])
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("DROP DATABASE IF EXISTS confctl_ahead"))
        await conn.execute(sa.text("CREATE DATABASE confctl_ahead"))
    url = engine.url.set(database="confctl_ahead")
    ahead = create_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        async with ahead.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
            await conn.execute(sa.text("INSERT INTO alembic_version VALUES ('f00dfeed0000')"))
        app = create_app(settings(), engine=ahead)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            response = await c.get("/readyz")
        assert response.status_code == 200, response.text
    finally:
        await ahead.dispose()
