"""Prometheus metrics: `GET /metrics`, HTTP requests, Twilio callbacks and REST calls, live subscribers.

The metrics live in prometheus_client's default registry, as Prometheus expects of one process (which also
brings its process and Python collectors); several apps in one process (the tests) add to the same counters.
Counting happens at the edges, never inside the service layer: an ASGI middleware for HTTP, the webhook
routes for callbacks stored or repeated, and a gateway wrapper that counts each Twilio operation by outcome.
The wallboard's gauges (`confctl_wallboard_*`) are the exception: each scrape computes them from the read model
(entry/wallboard.py), within a budget, so that they are the numbers the wallboard page shows.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, cast

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confctl.entry import wallboard
from confctl.service.conferences import Change
from confctl.service.gateway import TwilioError, TwilioGateway, TwilioUnavailable
from confctl.service.outage import StoreUnavailable
from confctl.service.ports import NewEvent

log = structlog.get_logger(__name__)

HTTP_REQUESTS = Counter(
    "confctl_http_requests_total", "HTTP requests answered, by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "confctl_http_request_duration_seconds", "Time to answer an HTTP request (SSE: the stream's whole life).",
    ["method", "route"],
)
CALLBACKS = Counter(
    "confctl_twilio_callbacks_total",
    "Twilio webhooks: stored (new fact), duplicate (a repeat, nothing stored), rejected (bad signature), "
    "invalid (a field missing).",
    ["kind", "outcome"],
)
TWILIO_REQUESTS = Counter(
    "confctl_twilio_requests_total",
    "Twilio REST operations (retries included in one), by outcome: ok, twilio_error, unavailable, error.",
    ["operation", "outcome"],
)
TWILIO_DURATION = Histogram(
    "confctl_twilio_request_duration_seconds", "Time of one Twilio REST operation, retries included.",
    ["operation"],
)
RECONCILE_REPAIRS = Counter(
    "confctl_reconcile_repairs_total",
    "Drifts from Twilio found and stored as corrections by the periodic reconciliation",
)
RECONCILE_TRIGGERS = Counter(
    "confctl_reconcile_triggers_total",
    "Conferences reconciled with Twilio, by what triggered it (periodic, sequence_gap, start_missing, "
    "dialing_overdue) and outcome: repaired, in_sync, failed (Twilio unreadable); cleared: a SequenceNumber gap "
    "that filled within its grace, so Twilio was not read.",
    ["trigger", "outcome"],
)
APPEND_BATCH = Histogram(
    "confctl_append_batch_size", "Appends committed together in one transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
SSE_SUBSCRIBERS = Gauge(
    "confctl_sse_subscribers", "Open live-update (SSE) streams, by feed: conference or all.", ["feed"],
)
DEFERRED_FACTS = Gauge(
    "confctl_deferred_facts", "Facts answered to Twilio during a database outage and not stored yet (voice calls).",
)
# The wallboard's numbers (entry/wallboard.py has the rules), computed from the read model on each scrape.
WALLBOARD_LIVE = Gauge("confctl_wallboard_conferences_live", "Conferences not completed.")
WALLBOARD_CUSTOMERS = Gauge(
    "confctl_wallboard_customers",
    "Joined customers by state: waiting (alone, no agent), on_hold, in_transfer (a transfer dialing or consulting).",
    ["state"],
)
WALLBOARD_LONGEST_HOLD = Gauge("confctl_wallboard_longest_hold_seconds", "The longest current hold of a customer.")
WALLBOARD_TRANSFERS = Gauge(
    "confctl_wallboard_transfers_today", "Transfers ended since 00:00 UTC, by outcome: completed, failed.",
    ["outcome"],
)
# Counted as this process commits them (a replica counts its own; Prometheus sums them): unlike the
# `_today` gauges above they never fall back to 0 at midnight, so `increase()` over any window works.
EVENTS_STORED = Counter("confctl_events_stored_total", "Events committed to the log by this process, by type.",
                        ["type"])
TRANSFERS_ENDED = Counter(
    "confctl_transfers_ended_total", "Transfers ended, by outcome: completed, failed, cancelled.", ["outcome"],
)
WALLBOARD_SUPERVISORS = Gauge("confctl_wallboard_supervisors_listening", "Joined supervisors (any mode).")
WALLBOARD_SCRAPE_FAILURES = Counter(
    "confctl_wallboard_scrape_failures", "Scrapes whose wallboard gauges kept their last values (database down).",
)
WALLBOARD_BUDGET_S = 1.0  # /metrics answers during a database outage too: the gauges then keep their values


async def _update_wallboard(request: Request) -> None:
    """Set the wallboard gauges from the read model, unless it does not answer within the budget."""
    container = getattr(request.app.state, "container", None)
    if container is None:
        return
    try:
        async with asyncio.timeout(WALLBOARD_BUDGET_S):
            counts = await wallboard.summary(container)
    except (StoreUnavailable, TimeoutError, OSError):
        WALLBOARD_SCRAPE_FAILURES.inc()
        return
    except Exception:  # /metrics must answer whatever the read model does: the other metrics matter most then
        log.exception("metrics.wallboard.failed")
        WALLBOARD_SCRAPE_FAILURES.inc()
        return
    WALLBOARD_LIVE.set(counts.live)
    WALLBOARD_CUSTOMERS.labels(state="waiting").set(counts.waiting)
    WALLBOARD_CUSTOMERS.labels(state="on_hold").set(counts.on_hold)
    WALLBOARD_CUSTOMERS.labels(state="in_transfer").set(counts.in_transfer)
    WALLBOARD_LONGEST_HOLD.set(counts.longest_hold_s)
    WALLBOARD_TRANSFERS.labels(outcome="completed").set(counts.transfers_completed)
    WALLBOARD_TRANSFERS.labels(outcome="failed").set(counts.transfers_failed)
    WALLBOARD_SUPERVISORS.set(counts.supervisors)


def count_reconcile(trigger: str, outcome: str) -> None:
    """One conference reconciled (or one suspicion cleared) by this trigger."""
    RECONCILE_TRIGGERS.labels(trigger=trigger, outcome=outcome).inc()


def count_stored(event: NewEvent) -> None:
    """One event committed by this process (the store's committer calls this)."""
    _stored_counter(event.type).inc()
    if event.type.startswith("transfer.") and event.type[9:] in TRANSFER_OUTCOMES:
        _transfer_counter(event.type[9:]).inc()


TRANSFER_OUTCOMES = ("completed", "failed", "cancelled")


@functools.cache
def _stored_counter(event_type: str) -> Any:
    return EVENTS_STORED.labels(type=event_type)


@functools.cache
def _transfer_counter(outcome: str) -> Any:
    return TRANSFERS_ENDED.labels(outcome=outcome)


def count_callback(kind: str, change: Change | None) -> None:
    """A webhook's outcome: a new fact stored, or a repeat that stored nothing (None: not ours to store)."""
    if change is not None:
        _callback_counter(kind, "duplicate" if change.duplicate else "stored").inc()


@functools.cache
def _callback_counter(kind: str, outcome: str) -> Any:
    return CALLBACKS.labels(kind=kind, outcome=outcome)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never the raw path: ids would explode it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # prometheus_client's labels() takes a lock and builds a key per call: keep the children it returns.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response: an exception escaped

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            key = (method, route, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
                    HTTP_DURATION.labels(method=method, route=route),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
            if route.startswith("/twilio/") and status in (400, 403):
                kind = route.removeprefix("/twilio/")
                CALLBACKS.labels(kind=kind, outcome="rejected" if status == 403 else "invalid").inc()


class _MeteredGateway:
    """Forwards to a TwilioGateway; each coroutine method is counted and timed under its own name."""

    def __init__(self, inner: TwilioGateway) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        return _metered(name, attribute)


def _metered(operation: str, call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    async def metered(*args: Any, **kwargs: Any) -> Any:
        outcome = "error"
        started = time.perf_counter()
        try:
            result = await call(*args, **kwargs)
            outcome = "ok"
            return result
        except TwilioError:
            outcome = "twilio_error"
            raise
        except TwilioUnavailable:
            outcome = "unavailable"
            raise
        finally:
            TWILIO_REQUESTS.labels(operation=operation, outcome=outcome).inc()
            TWILIO_DURATION.labels(operation=operation).observe(time.perf_counter() - started)

    return metered


def metered_gateway(gateway: TwilioGateway) -> TwilioGateway:
    """`gateway`, counting every operation by outcome (the wrapper follows the port whatever it grows)."""
    return cast(TwilioGateway, _MeteredGateway(gateway))


def install(app: FastAPI) -> None:
    """Add the middleware and `GET /metrics` (unauthenticated, like /healthz: scrapers carry no API key)."""
    app.add_middleware(MetricsMiddleware)

    @app.get("/metrics", operation_id="metrics", summary="Prometheus metrics", tags=["operations"],
             response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    async def metrics(request: Request) -> Response:
        await _update_wallboard(request)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

