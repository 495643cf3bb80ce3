"""The benchmark's yardstick: the least a FastAPI + asyncpg app must do to store a Twilio callback.

One route, `POST /twilio/conference-status`: the form read the idiomatic way (`await request.form()`), then
in one transaction one INSERT of every field (as jsonb) into a log table and one upsert of a projection row
keyed by FriendlyName; `204`. That is four round trips to PostgreSQL (BEGIN, INSERT, upsert, COMMIT) on
prepared statements, from an asyncpg pool of 16, and one WAL flush per request. No signature check, no
dedupe, no domain: what any store of these facts costs at least. `GET /healthz` only tells the harness it is up.

Served exactly as `confctl serve` serves confctl: `uvicorn.run(app, host, port, log_config=None,
proxy_headers=True)` (uvloop and httptools, one process), access log off.

Run: `.venv/bin/python bench/minimal_app.py --port 8001 --dsn postgresql://postgres@/minimal?host=/tmp/...`
(the harness starts it; the DSN may also come from MINIMAL_DSN).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, Response

POOL_SIZE = 16

SCHEMA = """
CREATE TABLE IF NOT EXISTS minimal_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    friendly_name text NOT NULL,
    fields jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS minimal_projection (
    friendly_name text PRIMARY KEY,
    last_sequence integer NOT NULL,
    events integer NOT NULL,
    fields jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""
INSERT_LOG = "INSERT INTO minimal_log (friendly_name, fields) VALUES ($1, $2::jsonb)"
UPSERT_PROJECTION = """
INSERT INTO minimal_projection (friendly_name, last_sequence, events, fields) VALUES ($1, $2, 1, $3::jsonb)
ON CONFLICT (friendly_name) DO UPDATE SET
    last_sequence = greatest(minimal_projection.last_sequence, excluded.last_sequence),
    events = minimal_projection.events + 1,
    fields = excluded.fields,
    updated_at = now()
"""


def create_app(dsn: str) -> FastAPI:
    """The app on an asyncpg pool of POOL_SIZE connections to `dsn`."""
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        state["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/twilio/conference-status", status_code=204)
    async def conference_status(request: Request) -> Response:
        form = await request.form()
        fields = {key: str(value) for key, value in form.items()}
        name = fields.get("FriendlyName", "")
        sequence = int(fields.get("SequenceNumber") or 0)
        document = json.dumps(fields)
        async with state["pool"].acquire() as conn, conn.transaction():
            await conn.execute(INSERT_LOG, name, document)
            await conn.execute(UPSERT_PROJECTION, name, sequence, document)
        return Response(status_code=204)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--dsn", default=os.environ.get("MINIMAL_DSN"), help="asyncpg DSN (or MINIMAL_DSN)")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn or MINIMAL_DSN is required")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    uvicorn.run(create_app(args.dsn), host=args.host, port=args.port, log_config=None, proxy_headers=True,
                access_log=False)


if __name__ == "__main__":
    main()
