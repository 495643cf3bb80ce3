"""`Idempotency-Key` on creating POSTs: a repeat with the same key and body gets the first answer and does
nothing again; the same key with another body is 422 idempotency_key_reused. Keys are per API key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem
from confctl.service.ports import IdempotentAnswer


def fingerprint(method: str, path: str, body: Any) -> str:
    """A hash of what the request asks for."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def idempotent(
    request: Request, body: Any, status: int, run: Callable[[], Awaitable[dict[str, Any]]]
) -> JSONResponse:
    """Run `run` once per Idempotency-Key; answer repeats from the store."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return JSONResponse(await run(), status_code=status)
    if not 1 <= len(key) <= 255:
        raise ApiProblem(422, "invalid_request", "Idempotency-Key must be 1 to 255 characters")
    container: Container = request.app.state.container
    scope = str(getattr(request.state, "actor", ""))
    print_ = fingerprint(request.method, request.url.path, body)
    stored = await container.idempotency.get_answer(scope, key)
    if stored is None:
        result = await run()
        stored = await container.idempotency.save_answer(
            scope, key, IdempotentAnswer(fingerprint=print_, status=status, body=result))
        if stored.fingerprint == print_:
            return JSONResponse(dict(stored.body), status_code=stored.status)
    if stored.fingerprint != print_:
        raise ApiProblem(422, "idempotency_key_reused",
                         "This Idempotency-Key was used with another request; use a new key.")
    return JSONResponse(dict(stored.body), status_code=stored.status, headers={"Idempotent-Replayed": "true"})
