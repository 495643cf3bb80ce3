"""Benchmark: Twilio callbacks stored per second, and read latency, on the embedded PostgreSQL.

Prints figures; asserts nothing (the test suite checks behaviour). Run: `.venv/bin/python bench/webhooks.py
[--calls 200] [--concurrency 20]`. Each call is the nine callbacks of a whole conference (join, start, hold,
unhold, mute, leaves, end) after its voice request, all signed, delivered through the ASGI app in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confctl.adapters.database import create_engine, migrate
from confctl.adapters.embedded_pg import EmbeddedPostgres
from confctl.entry.app import create_app
from confctl.entry.settings import ApiKey, Settings
from tests.support.twilio_forms import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, post_signed, whole_call


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def run(calls: int, concurrency: int) -> None:
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="confctl-bench-")) / "pgdata")
    engine = create_engine(server.start(), pool_size=concurrency)
    await migrate(engine)
    settings = Settings(database_url="unused://", twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                        public_url=PUBLIC_URL, api_keys=[ApiKey(name="bench", key="bench-key-123456",
                                                                scopes=["read"])])
    app = create_app(settings, engine=engine)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                               headers={"Authorization": "Bearer bench-key-123456"})
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one_call(n: int) -> None:
        async with gate:
            for cb in whole_call(f"CA{n:032d}", f"CA{n + 10**9:032d}", f"CF{n:032d}"):
                started = time.perf_counter()
                response = await post_signed(client, cb.path, cb.params)
                latencies.append(time.perf_counter() - started)
                assert response.status_code in (200, 204), response.text

    started = time.perf_counter()
    await asyncio.gather(*(one_call(n) for n in range(calls)))
    elapsed = time.perf_counter() - started
    reads: list[float] = []
    for n in range(min(calls, 200)):
        t = time.perf_counter()
        await client.get(f"/v1/conferences/room-CA{n:032d}")
        reads.append(time.perf_counter() - t)
    total = len(latencies)
    print(f"callbacks stored     {total} in {elapsed:.2f} s = {total / elapsed:.0f}/s "
          f"(concurrency {concurrency})")
    print(f"callback latency     p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"GET conference       p50 {statistics.median(reads) * 1000:.1f} ms, "
          f"p95 {percentile(reads, 0.95) * 1000:.1f} ms")
    print(f"peak RSS             {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (this process)")
    await client.aclose()
    await engine.dispose()
    server.stop()


def main() -> None:
    import logging

    import structlog

    # Measure the service, not the console: one log line per callback would dominate.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.concurrency))


if __name__ == "__main__":
    main()
