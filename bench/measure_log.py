"""Figures about the log: repeats per second, RSS with 1,000 live conferences, rebuild events per second.

- Repeats: a fresh set is stored once (every answer checked), then wrk sends it again and again for a few
  seconds (the Lua script's "cycle" mode): every request is a duplicate, and the events table must not grow.
- RSS: a fresh `confctl serve` on a database of its own receives 1,000 live conferences (customer joined,
  agent joined, conference started; nothing ends); VmRSS of that process before and after.
- Rebuild: the same database is filled further through the webhook route for at most `fill_s` seconds,
  then, if it still holds fewer than `events` events, topped up by cloning the stored streams in SQL under new
  ids (every sid in them replaced, so each clone is a conference of its own); then `confctl
  rebuild-projections` is timed as a process, and `confctl --help` too (the start-up share).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import signed
from blast import BlastResult, send_all
from stack import HOST, Pg, Proc, Stack, free_port, rss_mib
from wrkrun import THREADS, run_wrk

CLONE_STATEMENT_MAX = 50_000  # events per INSERT: positions of one transaction are numbered in 16 bits


async def count_rows(pg: Pg, database: str, table: str) -> int:
    return int(await pg.scalar(database, f"SELECT count(*) FROM {table}"))


async def count_events(pg: Pg, database: str) -> int:
    return await count_rows(pg, database, "events")


def set_requests(wrk_set: signed.WrkSet, port: int) -> list[bytes]:
    """A written set as raw HTTP requests, thread files interleaved (each file keeps its own order)."""
    per_thread: list[list[bytes]] = []
    for thread in range(1, len(wrk_set.per_thread) + 1):
        rows = []
        with open(f"{wrk_set.prefix}-{thread}.txt") as lines:
            for row in lines:
                path, signature, body = row.rstrip("\n").split("\t", 2)
                head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                        "Content-Type: application/x-www-form-urlencoded\r\n"
                        f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n")
                rows.append(head.encode() + body.encode())
        per_thread.append(rows)
    return [r for group in itertools.zip_longest(*per_thread) for r in group if r is not None]


def _check(result: BlastResult, what: str) -> None:
    if result.failed:
        raise RuntimeError(f"{what}: {result.failed} of {sum(result.statuses.values())} callbacks failed "
                           f"({dict(result.statuses)}; first: {result.first_error})")


def repeats(confctl: Proc, pg: Pg, database: str, workdir: Path, duration_s: float, connections: int = 64,
            size: int = 1000) -> dict[str, Any]:
    """Repeats per second and whether the log grew (it must not)."""
    assert confctl.port is not None
    wrk_set = signed.write_ingest_set(workdir, "repeat", confctl.url, size, conferences=200, threads=THREADS)
    try:
        first = asyncio.run(send_all(HOST, confctl.port, set_requests(wrk_set, confctl.port), connections=16))
        _check(first, "storing the set to repeat")
        time.sleep(0.5)
        before = asyncio.run(count_events(pg, database))
        result = run_wrk(confctl.url, connections, duration_s, wrk_set.prefix, mode="cycle")
        time.sleep(1.0)
        grew = asyncio.run(count_events(pg, database)) - before
    finally:
        wrk_set.remove()
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "requests": result.requests,
            "non_2xx": result.non_2xx, "grew": grew, "set": size, "connections": connections}


async def _send_checked(port: int, requests: list[bytes], what: str) -> BlastResult:
    result = await send_all(HOST, port, requests, connections=16)
    _check(result, what)
    return result


def live_conferences(stack: Stack, pg: Pg, database: str, conferences: int) -> tuple[Proc, dict[str, Any]]:
    """A fresh confctl serve on `database` (migrated), given `conferences` live conferences; RSS before/after.

    Returns the process (still running, for the rebuild's fill) and the figures.
    """
    url = pg.sqlalchemy_url(database)
    stack.confctl_command(["migrate"], url)
    port = free_port()
    proc = stack.start_confctl("confctl-rss", port, url, api_base=None)
    time.sleep(1.0)
    idle = rss_mib(proc.pid)
    set_id = signed.next_set_id()
    confs = [signed.Conf.of(set_id, n) for n in range(conferences)]
    public = f"http://{HOST}:{port}"
    forms = [signed.live_params(conf) for conf in confs]
    # Round by round: every customer joins, then every agent, then every conference starts.
    requests = [signed.http_request(f"{HOST}:{port}", public, each[step]) for step in range(3) for each in forms]
    sent = asyncio.run(_send_checked(port, requests, "storing the live conferences"))
    time.sleep(1.0)
    figures = {"idle_mib": idle, "live_mib": rss_mib(proc.pid), "conferences": conferences,
               "callbacks": len(requests), "fill_rps": len(requests) / sent.elapsed_s, "set_id": set_id,
               "p50_ms": statistics.median(sent.latencies) * 1000}
    return proc, figures


def fill(proc: Proc, set_id: int, conferences: int, target_events: int, pg: Pg, database: str,
         fill_s: float) -> int:
    """More callbacks (hold/mute cycle from SequenceNumber 4) on the live conferences, for at most `fill_s` s."""
    assert proc.port is not None
    confs = [signed.Conf.of(set_id, n) for n in range(conferences)]
    port = proc.port
    public = f"http://{HOST}:{port}"
    deadline = time.monotonic() + fill_s
    sent = 0
    for seq in range(4, 10_000):
        stored = asyncio.run(count_events(pg, database))
        if time.monotonic() >= deadline or stored >= target_events:
            break
        round_ = [signed.http_request(f"{HOST}:{port}", public, signed.cycle_params(conf, seq)) for conf in confs]
        asyncio.run(_send_checked(port, round_, "filling the log"))
        sent += len(round_)
    return sent


def _clone_columns(columns: list[Any]) -> tuple[list[str], list[str]]:
    """The events columns a clone sets, and the expression of each (see the module docstring)."""
    names, exprs = [], []
    for c in columns:
        name, kind = c["column_name"], c["data_type"]
        if c["is_identity"] == "YES" or c["is_generated"] == "ALWAYS":
            continue
        if name == "position" and c["column_default"] is None:
            # The v2 write path numbers positions from the transaction id; any unique rising value would do.
            expr = "(pg_current_xact_id()::text::bigint << 16) + row_number() OVER (ORDER BY m.ord, e.version)"
        elif c["column_default"] is not None:
            continue
        elif kind in ("text", "character varying", "jsonb", "json"):
            expr = f'replace(e."{name}"::text, m.old_u, m.new_u)::{kind}'
        else:
            expr = f'e."{name}"'
        names.append(f'"{name}"')
        exprs.append(expr)
    return names, exprs


async def clone_to(pg: Pg, database: str, target_events: int) -> int:
    """Clone stored `room-CA…` streams under new sids until the log holds `target_events`; events added."""
    conn = await pg.connect(database)
    try:
        columns = await conn.fetch(
            "SELECT column_name, data_type, is_identity, is_generated, column_default FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'events' ORDER BY ordinal_position")
        names, exprs = _clone_columns(list(columns))
        insert = (f"INSERT INTO events ({', '.join(names)}) SELECT {', '.join(exprs)} FROM "
                  "unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS m(old, old_u, new_u, ord) "
                  "JOIN events e ON e.stream_id = m.old ORDER BY m.ord, e.version")
        has_streams = bool(await conn.fetchval("SELECT to_regclass('streams') IS NOT NULL"))
        streams = await conn.fetch("SELECT stream_id, count(*) AS n FROM events WHERE stream_id LIKE 'room-CA%' "
                                   "GROUP BY stream_id ORDER BY stream_id")
        if not streams:
            raise RuntimeError("no stored stream to clone")
        total = int(await conn.fetchval("SELECT count(*) FROM events"))
        start, clone_no = total, 0
        source = itertools.cycle(streams)
        for _ in range(10_000):  # bounded: each statement adds up to CLONE_STATEMENT_MAX events
            if total >= target_events:
                break
            olds: list[str] = []
            old_us: list[str] = []
            new_us: list[str] = []
            acc = 0
            while total + acc < target_events:
                row = next(source)
                if acc + row["n"] > CLONE_STATEMENT_MAX and olds:
                    break
                clone_no += 1
                olds.append(row["stream_id"])
                old_us.append(row["stream_id"][7:23])
                new_us.append(f"c{clone_no:015x}")
                acc += row["n"]
            async with conn.transaction():
                await conn.execute(insert, olds, old_us, new_us)
                if has_streams:  # v2: each stream's head version
                    await conn.execute(
                        "INSERT INTO streams (stream_id, version) SELECT replace(e.stream_id, m.old_u, m.new_u), "
                        "max(e.version) FROM unnest($1::text[], $2::text[], $3::text[]) AS m(old, old_u, new_u) "
                        "JOIN events e ON e.stream_id = m.old GROUP BY 1 ON CONFLICT DO NOTHING",
                        olds, old_us, new_us)
            total += acc
        return total - start
    finally:
        await conn.close()


def rebuild(stack: Stack, pg: Pg, database: str) -> dict[str, Any]:
    """Time `confctl rebuild-projections` (and `confctl --help`) on `database`."""
    url = pg.sqlalchemy_url(database)
    events = asyncio.run(count_events(pg, database))
    help_s = min(stack.confctl_command(["--help"], url)[0] for _ in range(2))
    rebuild_s, output = stack.confctl_command(["rebuild-projections"], url)
    rows = asyncio.run(pg.scalar(database, "SELECT count(*) FROM conferences"))
    return {"events": events, "rebuild_s": rebuild_s, "help_s": help_s, "conferences": rows,
            "output": output.strip().splitlines()[-1] if output.strip() else "",
            "eps_wall": events / rebuild_s, "eps_net": events / max(rebuild_s - help_s, 1e-3)}
