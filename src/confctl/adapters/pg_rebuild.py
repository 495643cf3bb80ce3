"""Rebuilding the read model from the log on PostgreSQL, beside the live one, while appends go on.

1. New empty tables `conferences_rebuild` and `call_legs_rebuild` (LIKE the live ones, INCLUDING ALL).
2. The log is read in chunks of whole streams (ids from `streams` in order, their events by (stream, version)),
   each chunk projected and written (COPY) in a short transaction of its own: memory holds a few chunks, and no
   transaction with an id stays open, so followers of the global feed (which stop below the oldest running
   transaction) are never held back for long. Projecting is the costly part (decode and evolve in Python): for a
   large log, chunks are projected in worker processes, one per core, while this process reads and writes.
3. Catching up: any event the chunks may have missed has a position at or above the high-water mark taken
   before the first chunk was read (`pg_snapshot_xmin(pg_current_snapshot()) << 16`, the feed's own rule).
   Those streams are projected again, and again for what arrived meanwhile, until few are left.
4. The swap, in one short transaction: the live tables are locked against writes (appends wait for this moment
   only), the streams written since the latest mark are projected again, the old tables are dropped and the
   new ones renamed into place with the old names of their indexes and constraints (so the next rebuild finds
   the same schema). `confctl_append` writes the read model by table name and PL/pgSQL re-plans after DDL, so
   the appends that waited on the lock write into the new tables.

Rebuilds are serialised by a session advisory lock. A rebuild that fails leaves the live read model untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import structlog

from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_schema import POSITION_SHIFT
from confctl.service.ports import Projector, StoredEvent

log = structlog.get_logger(__name__)

TABLES = {"conferences": "conferences_rebuild", "call_legs": "call_legs_rebuild"}  # live: built beside
CONFERENCE_COLUMNS = ("id", "status", "created_at", "version", "twilio_sid", "document")
REBUILD_LOCK = (0x636F6E66, 0x72656275)  # ("conf", "rebu"): one rebuild at a time, whatever the process

# A chunk comes as one JSON text, built by PostgreSQL: this process receives it without decoding a row and hands it
# on as is; it is parsed in one go (orjson) where it is projected, which may be another process.
_EVENTS_JSON = ("json_agg(json_build_array(e.position, e.stream_id, e.version, e.type, e.data, e.metadata,"
                " e.recorded_at) ORDER BY e.stream_id, e.version)::text")
HIGH_WATER_SQL = f"SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT}"
STREAMS_SINCE_SQL = "SELECT DISTINCT stream_id FROM events WHERE position >= $1"
STREAM_EVENTS_SQL = f"SELECT {_EVENTS_JSON} FROM events e WHERE e.stream_id = ANY($1::text[])"


def _chunk_sql(first: bool) -> str:
    """The events of the streams after $1 (JSON) and the last of those streams: at most $2 streams, and no more
    than fit in $3 events (at least one stream, however long), in (stream_id, version) order. One statement, one
    round trip, one snapshot; the chunk is a range of stream ids."""
    # Two variants rather than `$1 IS NULL OR ...`, which would keep the generic plan off the index.
    after, unused = ("", "AND $1::text IS NULL") if first else ("WHERE stream_id > $1", "")
    return (
        f"WITH listed AS (SELECT stream_id, version FROM streams {after} ORDER BY stream_id LIMIT $2),"
        " chunk AS (SELECT max(stream_id) AS last FROM ("
        "   SELECT stream_id, version, sum(version) OVER (ORDER BY stream_id) AS upto FROM listed) s"
        f"  WHERE upto - version < $3 {unused})"
        f" SELECT {_EVENTS_JSON}, max(e.stream_id) FROM events e"
        f" WHERE {'' if first else 'e.stream_id > $1 AND '}e.stream_id <= (SELECT last FROM chunk)"
    )


_UPSERT_SQL = (
    "WITH written AS (INSERT INTO {table} AS c (id, status, created_at, version, twilio_sid, document)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[], $6::jsonb[])"
    " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, created_at = EXCLUDED.created_at,"
    " version = EXCLUDED.version, twilio_sid = EXCLUDED.twilio_sid, document = EXCLUDED.document"
    " RETURNING (xmax = 0) AS inserted)"
    " SELECT count(*) FILTER (WHERE inserted) FROM written"
)
# As in the append path: a call's first conference keeps it.
_LEGS_SQL = ("INSERT INTO {table} (call_sid, conference_id) SELECT * FROM unnest($1::text[], $2::text[])"
             " ON CONFLICT DO NOTHING")
# Index names are per schema: the new ones take the old names once the old tables are gone. Indexes pair up by
# definition without their names (kind, method, columns, predicate), other constraints by their definition.
INDEXES_SQL = ("SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition FROM pg_index x"
               " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::regclass ORDER BY i.oid")
RELOPTIONS_SQL = "SELECT reloptions FROM pg_class WHERE oid = $1::regclass"
CONSTRAINTS_SQL = ("SELECT conname AS name, contype::text || ':' || pg_get_constraintdef(oid) AS definition"
                   " FROM pg_constraint WHERE conrelid = $1::regclass AND conindid = 0 ORDER BY oid")

# A projected row ready for COPY: id, status, created_at, version, twilio_sid, document (JSON), call sids.
RowRecord = tuple[str, str, datetime, int, "str | None", bytes, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RebuildSettings:
    """How a rebuild cuts its work. `workers` None: one process per core for a large log, else a thread."""

    chunk_streams: int = 500
    chunk_events: int = 5_000
    workers: int | None = None
    parallel_from_events: int = 50_000  # below this, starting processes costs more than it saves
    catch_up_passes: int = 6
    catch_up_enough: int = 50  # few enough streams to project again under the lock, in a few milliseconds
    lock_timeout_ms: int = 2_000
    swap_attempts: int = 5


def fold_chunk(project: Projector, chunk: str) -> tuple[int, list[RowRecord]]:
    """Project a chunk of whole streams (as `_EVENTS_JSON`) into rows ready to write; the count of events too.

    Runs in a worker process or a thread."""
    parse_time = datetime.fromisoformat
    events = [StoredEvent(position, stream_id, version, kind, data, metadata, parse_time(at))
              for position, stream_id, version, kind, data, metadata, at in orjson.loads(chunk)]
    return len(events), [(r.stream_id, r.status, r.created_at, r.version, r.twilio_sid,
             orjson.dumps(r.document if isinstance(r.document, dict) else dict(r.document)), tuple(r.call_sids))
            for r in project(events)]


def _jsonb_encode(value: Any) -> bytes:
    # jsonb's binary format is a version byte and the JSON text; bytes are JSON already encoded by `fold_chunk`.
    return b"\x01" + (value if isinstance(value, bytes) else orjson.dumps(value))


def _jsonb_decode(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _connect(pool: LazyPool) -> asyncpg.Connection:
    """A connection of the rebuild's own (not the app's pool), jsonb in binary format: COPY takes no other."""
    conn = await pool.connect()
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
                              format="binary")
    return conn


def _index_key(definition: str) -> str:
    """`CREATE [UNIQUE] INDEX name ON table USING method (...)` without its name and table."""
    head, _, tail = definition.partition(" ON ")
    return f"{head.rsplit(' ', 1)[0]} {tail.partition(' USING ')[2]}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _picklable(project: Projector) -> bool:
    try:
        pickle.dumps(project)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


class Rebuild:
    """One rebuild of the read model with `project`."""

    def __init__(self, pool: LazyPool, project: Projector, settings: RebuildSettings | None = None) -> None:
        self._pool = pool
        self._project = project
        self._settings = settings or RebuildSettings()
        self._executor: Executor | None = None
        self.workers = 0
        self.events = 0
        self.refolded = 0  # streams projected again to catch up, before the swap
        self.refolded_locked = 0  # and under the swap's lock
        self.locked_s = 0.0  # how long the swap held the live tables (appends waited at most this long)

    async def run(self) -> int:
        """Build beside, catch up, swap; the number of conferences in the new read model."""
        conn = await _connect(self._pool)
        reader = await _connect(self._pool)  # reads the next chunks while earlier ones are projected
        try:
            await conn.execute("SELECT pg_advisory_lock($1, $2)", *REBUILD_LOCK)
            started = time.perf_counter()
            self._start_executor(await conn.fetchval("SELECT coalesce(sum(version), 0) FROM streams"))
            async with conn.transaction():
                # Left by a rebuild that died: nobody else uses them (the advisory lock).
                await conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES.values())}")
                for live, side in TABLES.items():
                    await conn.execute(f"CREATE TABLE {side} (LIKE {live} INCLUDING ALL)")
                    # LIKE copies no storage parameters (conferences' fillfactor, which keeps its updates HOT).
                    options = await conn.fetchval(RELOPTIONS_SQL, live)
                    if options:
                        await conn.execute(f"ALTER TABLE {side} SET ({', '.join(options)})")
            try:
                mark = await conn.fetchval(HIGH_WATER_SQL)
                count = await self._build(conn, reader)
                mark, caught_up = await self._catch_up(conn, mark)
                await conn.execute(f"ANALYZE {', '.join(TABLES.values())}")  # statistics move with the tables
                count += caught_up + await self._swap(conn, mark)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES.values())}")
                raise
            elapsed = time.perf_counter() - started
            log.info("store.rebuild.done", conferences=count, events=self.events, workers=self.workers,
                     refolded=self.refolded, refolded_locked=self.refolded_locked,
                     locked_ms=round(self.locked_s * 1000, 1),
                     seconds=round(elapsed, 3), events_per_s=round(self.events / elapsed) if elapsed else None)
            return count
        finally:
            if self._executor is not None:
                # Without waiting: a worker finishing a chunk nobody wants any more must not delay the answer.
                self._executor.shutdown(wait=False, cancel_futures=True)
            for c in (reader, conn):  # closing the session releases the advisory lock too
                with contextlib.suppress(Exception):
                    await c.close()

    def _start_executor(self, events: int) -> None:
        s = self._settings
        workers = s.workers
        if workers is None:
            cores = os.cpu_count() or 1
            workers = cores if cores > 1 and events >= s.parallel_from_events else 0
        if workers > 0 and not _picklable(self._project):
            log.info("store.rebuild.in_process", reason="the projector cannot be sent to a worker process")
            workers = 0
        if workers == 0:
            # A thread, not the event loop: the loop goes on serving (appends, reads) while a chunk is projected.
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="confctl.rebuild")
            return
        # Forked: the workers only run the projector (pure Python, no I/O, no lock another thread could hold),
        # start in milliseconds with everything imported, and never re-run the main module as spawned ones do.
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        self.workers = workers
        for _ in range(workers):
            self._executor.submit(int)  # the workers start while the tables are made

    async def _fold(self, chunk: str) -> tuple[int, list[RowRecord]]:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fold_chunk, self._project, chunk)

    async def _build(self, conn: asyncpg.Connection, reader: asyncpg.Connection) -> int:
        """Every stream, chunk by chunk: a chunk per worker being projected while the next one is read."""
        s = self._settings
        first, rest = _chunk_sql(first=True), _chunk_sql(first=False)
        depth = max(self.workers, 1)
        in_flight: deque[asyncio.Future[tuple[int, list[RowRecord]]]] = deque()
        after: str | None = None
        count = 0
        try:
            while True:
                chunk, last = await reader.fetchrow(first if after is None else rest, after, s.chunk_streams,
                                                    s.chunk_events)
                done = chunk is None
                if chunk is not None:
                    after = last
                    in_flight.append(asyncio.ensure_future(self._fold(chunk)))
                    del chunk
                while in_flight and (done or len(in_flight) > depth):
                    events, rows = await in_flight.popleft()
                    self.events += events
                    count += await self._copy(conn, rows)
                if done:
                    return count
        finally:
            for future in in_flight:
                future.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    @staticmethod
    async def _copy(conn: asyncpg.Connection, rows: list[RowRecord]) -> int:
        """A chunk's rows into the new tables, in a transaction of their own: each stream is in one chunk only."""
        async with conn.transaction():
            await conn.copy_records_to_table(TABLES["conferences"], records=[r[:6] for r in rows],
                                             columns=CONFERENCE_COLUMNS)
            await _write_legs(conn, TABLES["call_legs"], rows)
        return len(rows)

    async def _refold(self, conn: asyncpg.Connection, stream_ids: Sequence[str], tables: dict[str, str]) -> int:
        """Project these streams again from their whole history and upsert their rows; the count of new rows."""
        inserted = 0
        step = self._settings.chunk_streams
        for i in range(0, len(stream_ids), step):
            chunk = await conn.fetchval(STREAM_EVENTS_SQL, list(stream_ids[i:i + step]))
            rows = (await self._fold(chunk))[1] if chunk is not None else []
            if rows:
                columns = [list(c) for c in zip(*(r[:6] for r in rows), strict=True)]
                inserted += await conn.fetchval(_UPSERT_SQL.format(table=tables["conferences"]), *columns)
                await _write_legs(conn, tables["call_legs"], rows)
        return inserted

    async def _catch_up(self, conn: asyncpg.Connection, mark: int) -> tuple[int, int]:
        """Project again what was appended since `mark`, pass after pass, while many streams are concerned;
        the next mark and the count of new rows."""
        s = self._settings
        inserted = 0
        for _ in range(s.catch_up_passes):
            next_mark = await conn.fetchval(HIGH_WATER_SQL)  # taken first: whatever commits later is above it
            stream_ids = [r[0] for r in await conn.fetch(STREAMS_SINCE_SQL, mark)]
            mark = next_mark
            if stream_ids:
                self.refolded += len(stream_ids)
                async with conn.transaction():
                    inserted += await self._refold(conn, stream_ids, TABLES)
            if len(stream_ids) <= s.catch_up_enough:
                break
        return mark, inserted

    async def _swap(self, conn: asyncpg.Connection, mark: int) -> int:
        """Lock the live tables against writes, project the last streams again, swap; the count of new rows."""
        s = self._settings
        inserted = 0
        for attempt in range(1, s.swap_attempts + 1):
            try:
                async with conn.transaction():
                    # Appends queue behind this lock: never wait long for it (a long transaction holding the
                    # live tables), give up and try again after another catch-up.
                    await conn.execute(f"SET LOCAL lock_timeout = {int(s.lock_timeout_ms)}")
                    # The order in which appends take them (conferences, then call_legs): no deadlock.
                    await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
                    locked_at = time.perf_counter()
                    stream_ids = [r[0] for r in await conn.fetch(STREAMS_SINCE_SQL, mark)]
                    locked = await self._refold(conn, stream_ids, TABLES)
                    await self._rename(conn)
                self.refolded_locked = len(stream_ids)
                self.locked_s = time.perf_counter() - locked_at
                return inserted + locked
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as exc:
                log.warning("store.rebuild.swap_retry", attempt=attempt, error=str(exc))
                if attempt == s.swap_attempts:
                    raise
                mark, more = await self._catch_up(conn, mark)
                inserted += more
        raise AssertionError("unreachable")

    @staticmethod
    async def _rename(conn: asyncpg.Connection) -> None:
        """Drop the live tables, give the new ones their names and their indexes' and constraints' names."""
        renames: list[str] = []
        for live, side in TABLES.items():
            pairs = ((INDEXES_SQL, _index_key, "ALTER INDEX {old} RENAME TO {new}"),
                     (CONSTRAINTS_SQL, str, f"ALTER TABLE {live} RENAME CONSTRAINT {{old}} TO {{new}}"))
            for sql, key, alter in pairs:
                wanted: dict[str, deque[str]] = {}
                for r in await conn.fetch(sql, live):
                    wanted.setdefault(key(r["definition"]), deque()).append(r["name"])
                for r in await conn.fetch(sql, side):
                    names = wanted.get(key(r["definition"]))
                    name = names.popleft() if names else None
                    if name is not None and name != r["name"]:
                        renames.append(alter.format(old=_quote(r["name"]), new=_quote(name)))
        await conn.execute(f"DROP TABLE {', '.join(TABLES)}")
        for live, side in TABLES.items():
            await conn.execute(f"ALTER TABLE {side} RENAME TO {live}")
        for statement in renames:
            await conn.execute(statement)


async def _write_legs(conn: asyncpg.Connection, table: str, rows: list[RowRecord]) -> None:
    sids = [sid for r in rows for sid in r[6]]
    if sids:
        owners = [r[0] for r in rows for _ in r[6]]
        await conn.execute(_LEGS_SQL.format(table=table), sids, owners)


async def rebuild_read_model(pool: LazyPool, project: Projector, settings: RebuildSettings | None = None) -> int:
    """Rebuild the read model from the log with `project` (see the module docstring); the conference count."""
    return await Rebuild(pool, project, settings).run()
