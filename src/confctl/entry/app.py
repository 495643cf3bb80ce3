"""The FastAPI app factory and its lifespan: the one place where confctl is wired together."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl import __version__
from confctl.adapters.database import create_engine, head_revision, known_revisions, migrate, schema_ready
from confctl.adapters.embedded_pg import EmbeddedPostgres
from confctl.adapters.pg_notify import PgNotifier
from confctl.adapters.pg_outbox import PgOutbox
from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_store import PostgresEventStore
from confctl.adapters.signature import SignatureChecker
from confctl.entry import (
    api_control,
    api_read,
    api_stream,
    api_tokens,
    console,
    cors,
    docs,
    errors,
    metrics,
    problems,
    wallboard,
    webhooks,
)
from confctl.entry.container import Container, SystemClock
from confctl.entry.logging import protect
from confctl.entry.metrics import (
    APPEND_BATCH,
    DEFERRED_FACTS,
    RECONCILE_REPAIRS,
    count_reconcile,
    count_stored,
    metered_gateway,
)
from confctl.entry.request_ids import RequestIdApp
from confctl.entry.schemas import Health
from confctl.entry.settings import Settings
from confctl.entry.twilio_client import twilio_gateway
from confctl.service.callbacks import CallbackService
from confctl.service.conferences import ConferenceRepository
from confctl.service.control import ControlService
from confctl.service.effects import CallSettings, EffectRunner
from confctl.service.gateway import TwilioGateway
from confctl.service.outage import DeferredFacts, StoreUnavailable
from confctl.service.outbox import EffectRetry, EffectWorker
from confctl.service.ports import Clock
from confctl.service.reconcile import Reconciler
from confctl.service.suspicions import SuspicionWatch, WatchPolicy

log = structlog.get_logger(__name__)

READY_BUDGET_S = 0.5  # /readyz answers within a second, also when the database hangs (a healthy check: ms)

DESCRIPTION = """
Conference-call control for contact centers on Twilio.

Every customer call is a Twilio Conference; confctl stores every fact Twilio reports in an event log and
serves the state of each conference, who hears whom, and the controls a contact-center frontend needs.
Authenticate with `Authorization: Bearer <API key>`; errors are `application/problem+json`.
"""


def build_container(
    settings: Settings, engine: AsyncEngine, gateway: TwilioGateway | None, clock: Clock | None = None
) -> Container:
    """Wire stores and services over one engine."""
    pool = LazyPool.shared(engine, max_size=settings.db_pool_size, timeout_s=settings.db_timeout_s)
    store = PostgresEventStore(engine, pool, committers=settings.append_concurrency, max_batch=settings.append_batch)
    store.committer.on_batch = APPEND_BATCH.observe
    store.committer.on_stored = count_stored
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    conferences = ConferenceRepository(store, worker_id=worker_id)
    outbox = PgOutbox(pool, worker_id)
    clock = clock or SystemClock()
    worker = control = reconciler = suspicions = None
    if gateway is not None:
        gateway = metered_gateway(gateway)
        call_settings = CallSettings(public_url=settings.public_url, caller_id=settings.caller_id,
                                     hold_music_url=settings.hold_music_url, wait_url=settings.wait_url,
                                     wait_method=settings.wait_method, hold_method=settings.hold_method,
                                     record=settings.record,
                                     connection_overrides=settings.twilio_connection_overrides)
        runner = EffectRunner(conferences, gateway, clock, call_settings)
        worker = EffectWorker(conferences, runner, outbox, gateway, clock, poll_s=settings.outbox_poll_s,
                              read_model=store, retry=EffectRetry(
                                  max_s=settings.effect_backoff_max_s, give_up_s=settings.effect_retry_s))
        control = ControlService(conferences, store, gateway, clock,
                                 answer_timeout_s=settings.command_timeout_s, outbox=outbox)
        reconciler = Reconciler(conferences, store, gateway, clock, interval_s=settings.reconcile_s, lock=outbox,
                                on_repair=RECONCILE_REPAIRS.inc, on_outcome=count_reconcile)
        if settings.reconcile_triggers:
            suspicions = SuspicionWatch(
                conferences, reconciler.reconcile, clock,
                WatchPolicy(grace_s=settings.reconcile_grace_s, dialing_margin_s=settings.reconcile_dialing_margin_s),
                on_cleared=lambda trigger: count_reconcile(trigger, "cleared"))
            conferences.on_stored = suspicions.observe
    return Container(
        clock=clock,
        settings=settings,
        store=store,
        read_model=store,
        idempotency=store,
        conferences=conferences,
        callbacks=CallbackService(conferences, store, deferred=DeferredFacts(on_change=DEFERRED_FACTS.set),
                                  voice_wait_s=settings.voice_store_wait_s),
        signatures=SignatureChecker(settings.twilio_auth_token, settings.public_url),
        gateway=gateway,
        control=control,
        live=PgNotifier(engine, timeout_s=settings.db_timeout_s),
        worker=worker,
        outbox=outbox,
        reconciler=reconciler,
        suspicions=suspicions,
    )


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The engine on CONFCTL_DATABASE_URL, or on an embedded server started (and migrated) for us."""
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
        url = await asyncio.to_thread(embedded.start)
    engine = create_engine(url)
    try:
        if embedded is not None:
            await migrate(engine)  # Nobody else can migrate a database that lives only with this process.
        yield engine
    finally:
        await engine.dispose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def tune_gc() -> None:
    """Keep the garbage collector's full passes off the request path of a server process.

    Every module, route and schema loaded at start-up is frozen out of the collector's sight, and the young
    generation is collected less often: a full pass over a heap with thousands of cached conference states
    takes tens of milliseconds, which webhooks would otherwise feel as their p99.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    gateway: TwilioGateway | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The ASGI app. Given an engine, it uses it as is (tests); otherwise the lifespan opens the database."""
    settings = settings or Settings()
    protect(settings)  # its secrets never appear in a log line, also ones invented for `confctl dev`

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.api_keys:
            log.warning("auth.no_api_keys", hint="set CONFCTL_API_KEYS: every /v1 request is refused with 401")
        if not settings.twilio_auth_token:
            log.warning("twilio.no_auth_token", hint="set CONFCTL_TWILIO_AUTH_TOKEN: Twilio signs webhooks with it, "
                        "so every webhook is refused with 403")
        async with AsyncExitStack() as stack:
            if engine is None:
                db = await stack.enter_async_context(_database(settings))
                twilio = gateway
                if twilio is None:
                    sdk = twilio_gateway(settings)  # with the API key when one is set
                    stack.push_async_callback(sdk.aclose)
                    twilio = sdk
                app.state.container = build_container(settings, db, twilio, clock)
            container: Container = app.state.container
            stack.push_async_callback(container.aclose)  # before the engine is disposed
            stack.push_async_callback(container.callbacks.deferred.aclose)  # while the store is still open
            await asyncio.to_thread(head_revision)  # read from disk once, never inside /readyz's budget
            await asyncio.to_thread(known_revisions)
            # Alive (the liveness lock held) before this process claims effects or takes over others'.
            if container.outbox is not None and not await container.outbox.alive():
                log.warning("outbox.alive.pending", hint="the database did not answer; effects wait for it")
            if container.worker is not None:
                container.worker.start()  # resumes, at once, what a dead process left
            if container.reconciler is not None:
                container.reconciler.start()
            if engine is None:
                tune_gc()
            yield

    app = RequestIdApp(  # FastAPI with a request id per request, outside every middleware
        title="confctl",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by docs.install from local files; ReDoc would need a CDN
        redoc_url=None,
        openapi_tags=[
            {"name": "conferences", "description": "Conferences, their history and who hears whom."},
            {"name": "control", "description": "Participants, hold and mute, supervision, transfers, recording."},
            {"name": "twilio webhooks", "description": "Signed callbacks from Twilio (not for frontends)."},
            {"name": "live updates", "description": "Server-Sent Events of stored events, resumable."},
            {"name": "operations", "description": "Health, readiness and metrics."},
            {"name": "browsers", "description": "Short-lived browser tokens and Twilio Voice access tokens."},
        ],
    )
    app.state.settings = settings
    if engine is not None:
        app.state.container = build_container(settings, engine, gateway, clock)
    errors.install(app)
    app.include_router(webhooks.router)
    app.include_router(api_read.router)
    app.include_router(api_control.router)
    app.include_router(api_stream.router)
    app.include_router(api_tokens.router)
    app.include_router(problems.router)
    app.include_router(wallboard.router)
    app.include_router(console.router)
    _operations(app)
    # Inside the metrics middleware, which counts its answers too.
    app.add_middleware(webhooks.WebhookFastPath, max_in_flight=settings.webhook_concurrency)
    metrics.install(app)
    docs.install(app)
    cors.install(app, settings.cors_origins)  # outermost: error answers carry CORS headers too
    return app


def _operations(app: FastAPI) -> None:
    @app.get("/healthz", operation_id="healthz", summary="The process is alive", tags=["operations"],
             response_model=Health)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", operation_id="readyz", summary="Database reachable and migrated", tags=["operations"],
             response_model=Health, responses={503: {"model": Health}})
    async def readyz(request: Request) -> Any:
        container: Container = request.app.state.container
        pool: LazyPool = container.store.pool  # type: ignore[attr-defined]
        try:
            # Answered within READY_BUDGET_S whatever the database does (a check that waits longer is what a
            # frozen database looks like), at once while it is known to be down. Through the asyncpg pool:
            # a check given up on terminates its connection at once, where SQLAlchemy would first spend 2 s
            # trying to close it gracefully.
            async with asyncio.timeout(READY_BUDGET_S):
                revisions = [r["version_num"] for r in await pool.fetch("SELECT version_num FROM alembic_version")]
        except (StoreUnavailable, TimeoutError) as exc:
            detail = str(exc) or f"no answer within {READY_BUDGET_S:g} s"
            return JSONResponse({"status": "unavailable", "detail": f"database unreachable: {detail}"}, 503)
        except asyncpg.UndefinedTableError:  # no alembic_version table: never migrated
            revisions = []
        if not schema_ready(revisions):
            return JSONResponse({"status": "unavailable", "detail": "migrations are not at head"}, 503)
        return {"status": "ok"}
