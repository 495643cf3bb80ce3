"""`Idempotency-Key` on creating POSTs: a repeat with the same key and body gets the first answer and does
nothing again; the same key with another body is 422 idempotency_key_reused. Keys are per API key.

A key in flight belongs to the process running its request; when that process dies, the next repeat takes
the key over and resumes the request: what the first run stored (a transfer, a dial) is found by the key in
the events' metadata and not decided again, so a repeat never dials twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem
from confctl.service.control import REQUEST_KEY, RESUMED
from confctl.service.ports import IdempotencyStore, IdempotentAnswer


def fingerprint(method: str, path: str, body: Any) -> str:
    """A hash of what the request asks for."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


IN_FLIGHT_WAIT_S = 30.0  # how long a repeat waits for the first request to finish


async def idempotency_key(key: Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255,
    description=("Makes the request safe to repeat: a repeat with the same key and body gets the first answer "
                 "(with `Idempotent-Replayed: true`) and does nothing again; the same key with another body is 422 "
                 "idempotency_key_reused. Keys are per API key."))] = None) -> str | None:
    """The Idempotency-Key header, declared (a route dependency) so that the OpenAPI document states it and FastAPI
    checks its length; `idempotent` reads it."""
    return key


async def idempotent(
    request: Request, body: Any, status: int, run: Callable[[], Awaitable[dict[str, Any]]]
) -> JSONResponse:
    """Run `run` once per Idempotency-Key; answer repeats (even ones arriving mid-flight) from the store."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return JSONResponse(await run(), status_code=status)
    if not 1 <= len(key) <= 255:
        raise ApiProblem(422, "invalid_request", "Idempotency-Key must be 1 to 255 characters")
    container: Container = request.app.state.container
    store = container.idempotency
    scope = str(getattr(request.state, "actor", ""))
    print_ = fingerprint(request.method, request.url.path, body)
    owner = container.conferences.worker_id
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while True:
        stored = await store.reserve(scope, key, print_, owner)
        if stored is None:
            return await _first(store, scope, key, print_, status, run)
        if stored.fingerprint != print_:
            raise ApiProblem(422, "idempotency_key_reused",
                             "This Idempotency-Key was used with another request; use a new key.")
        if stored.status != 0:
            return JSONResponse(dict(stored.body), status_code=stored.status,
                                headers={"Idempotent-Replayed": "true"})
        if stored.owner and stored.owner != owner and await store.take_over(scope, key, stored.owner, owner):
            # The process running the first request died: this one resumes it (what it stored is not decided
            # again; its effects are resumed by the outbox).
            return await _first(store, scope, key, print_, status, run, resumed=True)
        if time.monotonic() > deadline:
            raise ApiProblem(409, "idempotency_key_in_flight",
                             "The first request with this Idempotency-Key is still running; retry later.",
                             {"Retry-After": "1"})
        await asyncio.sleep(0.05)  # the first request is still running: wait for its answer


async def _first(store: IdempotencyStore, scope: str, key: str, print_: str, status: int,
                 run: Callable[[], Awaitable[dict[str, Any]]], *, resumed: bool = False) -> JSONResponse:
    """The request that reserved the key: run it, keep its answer; on failure free the key for a retry."""
    request_key = REQUEST_KEY.set(f"{scope}:{key}")
    was_resumed = RESUMED.set(resumed)
    try:
        result = await run()
    except BaseException:
        await store.release(scope, key)
        raise
    finally:
        REQUEST_KEY.reset(request_key)
        RESUMED.reset(was_resumed)
    await store.complete(scope, key, IdempotentAnswer(fingerprint=print_, status=status, body=result))
    return JSONResponse(result, status_code=status)
