"""Request ids: every answer carries one, even a 500; process-wide loops a request happens to start never log
under that request's id (their later lines are not the request's)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bind_contextvars, get_contextvars, reset_contextvars

from confctl.adapters.pg_notify import PgNotifier
from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_store import PostgresEventStore
from confctl.entry.request_ids import RequestIdApp
from confctl.service.outage import DeferredFacts, DeferredRetry
from confctl.service.ports import NewEvent

REQUEST_ID = "req-that-started-it"


async def test_an_unhandled_error_answers_500_with_a_request_id() -> None:
    """The middleware sits outside Starlette's error handler: its 500 names the request id, as any answer."""
    app = RequestIdApp()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/boom")
        given = await client.get("/boom", headers={"X-Request-ID": "abc-123"})
    assert answer.status_code == 500 and re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    assert given.headers["x-request-id"] == "abc-123"


def _as_request() -> Any:
    return bind_contextvars(request_id=REQUEST_ID)


async def test_the_group_committer_a_request_starts_runs_outside_its_context(engine: AsyncEngine) -> None:
    """The committer tasks are started by the first append, in some request: they commit everyone's batches, so
    they must not carry that request's id."""
    store = PostgresEventStore(engine, committers=1)
    seen: list[dict[str, Any]] = []
    store.committer.on_batch = lambda _size: seen.append(get_contextvars())  # called in the committer's task
    tokens = _as_request()
    try:
        await store.append("room-ctx", [NewEvent("x.happened", {})], expected_version=0)
    finally:
        reset_contextvars(**tokens)
        await store.aclose()
    assert seen == [{}]


async def test_the_listener_a_request_starts_never_logs_under_its_id(engine: AsyncEngine) -> None:
    """The LISTEN connection started for the first SSE subscriber reports its losses without that request's id."""
    notifier = PgNotifier(engine, reconnect_s=0.05)
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        tokens = _as_request()
        try:
            await notifier.start()
        finally:
            reset_contextvars(**tokens)
        first = notifier.backend_pid
        assert first is not None
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        for _ in range(200):
            if notifier.backend_pid not in (None, first):
                break
            await asyncio.sleep(0.02)
        await notifier.aclose()
    events = [entry["event"] for entry in logs]
    assert "live.listen.lost" in events, events
    assert [entry for entry in logs if "request_id" in entry] == []


async def test_deferred_facts_are_stored_outside_the_context_of_the_first_request() -> None:
    """The loop storing deferred facts (of many webhooks) once the database is back carries no request's id."""
    deferred = DeferredFacts(DeferredRetry(initial_s=0.01))
    seen: list[dict[str, Any]] = []
    stored = asyncio.Event()

    async def store() -> None:
        seen.append(get_contextvars())
        stored.set()

    tokens = _as_request()
    try:
        assert deferred.defer("key-1", store)
    finally:
        reset_contextvars(**tokens)
    await asyncio.wait_for(stored.wait(), 5)
    await deferred.aclose()
    assert seen == [{}]


async def test_the_database_probe_a_request_starts_never_logs_under_its_id(engine: AsyncEngine) -> None:
    """A request that finds the database down starts the probe; the probe's "back" line is not that request's."""
    pool = LazyPool(engine, min_size=1, max_size=2, timeout_s=2.0, probe_s=0.02)
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        tokens = _as_request()
        try:
            pool.unavailable(OSError("connection refused"))
        finally:
            reset_contextvars(**tokens)
        for _ in range(200):
            if any(entry["event"] == "store.database.back" for entry in logs):
                break
            await asyncio.sleep(0.02)
        await pool.aclose()
    back = [entry for entry in logs if entry["event"] == "store.database.back"]
    assert back and "request_id" not in back[0], logs
