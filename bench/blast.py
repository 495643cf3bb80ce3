"""Send precomputed HTTP/1.1 requests exactly once each, over a few keep-alive connections, and wait for every answer.

wrk runs for a duration and may leave requests unsent or unanswered; filling a database with a known set
(live conferences for the RSS figure, the log for the rebuild, the set the duplicates measurement repeats)
needs each request sent once and answered. This is a small raw-socket client: far cheaper per request than
httpx, so it rarely limits what it measures.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class BlastResult:
    """Status codes, latencies (seconds) and the wall time of one exact-once run."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    first_error: str = ""

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def failed(self) -> int:
        return sum(self.statuses.values()) - self.ok


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return status, body, headers.get("connection", "").lower() != "close"


async def send_all(host: str, port: int, requests: list[bytes], connections: int = 16,
                   timeout_s: float = 60.0) -> BlastResult:
    """Send every request once (in order of start, `connections` at a time) and collect the answers."""
    result = BlastResult()
    queue = iter(requests)
    started = time.perf_counter()

    async def worker() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None

        def drop() -> None:
            nonlocal reader, writer
            if writer is not None:
                writer.close()
            reader = writer = None

        try:
            for request in queue:
                # A request whose connection broke before any answer (e.g. the server closed a keep-alive
                # connection after an error) is sent once more on a new one: a repeat stores nothing.
                for attempt in (1, 2):
                    t = time.perf_counter()
                    try:
                        if writer is None or reader is None:
                            reader, writer = await asyncio.open_connection(host, port)
                        writer.write(request)
                        status, body, keep = await asyncio.wait_for(_read_response(reader), timeout_s)
                    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                        drop()
                        if attempt == 2:
                            result.statuses[0] += 1  # 0: no answer
                            result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                        continue
                    result.latencies.append(time.perf_counter() - t)
                    result.statuses[status] += 1
                    if status >= 300 and not result.first_error:
                        result.first_error = f"HTTP {status}: {body[:300].decode(errors='replace')}"
                    if not keep:
                        drop()
                    break
        finally:
            drop()

    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(requests))))))
    result.elapsed_s = time.perf_counter() - started
    return result
