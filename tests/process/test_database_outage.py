"""PostgreSQL goes away under load and comes back, and confctl serve (never restarted) rides it out.

The stack runs on a PostgreSQL cluster of this test's own (the session's shared one must never stop). With
live calls, new inbound calls, hang-ups, reads and readiness probes going on, PostgreSQL is first shut
down for 10 s (`pg_ctl stop`: connections closed, new ones refused), then frozen for 12 s (SIGSTOP:
sockets open, nothing answers). Meanwhile `/readyz` answers 503 within 1 s, reads answer 503 quickly,
callbacks 503 within Twilio's 15 s, and the voice webhook its TwiML, so a caller placed during the outage
still reaches the conference in the simulator's ground truth. Afterwards the calls placed during the outage
are stored, every fact a 2xx answer acknowledged is in the store, none is stored twice, and finally both
views agree: that last step needs what 503s refused to come back (Twilio's retries, periodic
reconciliation every CONFCTL_RECONCILE_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from confctl.adapters.database import create_engine, migrate
from confctl.entry import twilio_forms as forms
from tests.process.exchanges import Exchange
from tests.process.stack import ProcessStack, eventually, running_stack
from tests.support.pg_cluster import OwnCluster

WEBHOOK_LIMIT_S = 15.0  # Twilio gives up on a webhook after 15 s
READY_LIMIT_S = 1.0
READ_LIMIT_S = 4.0  # the first read waits out one statement timeout (3 s by default), the next ones fail at once
PROBE_EVERY_S = 0.3
RECONCILE_S = 2


@dataclass
class Probe:
    """One request made during an outage and how it was answered."""

    path: str
    status: int | None
    took: float


@dataclass
class Outage:
    """One outage: its kind, its window (monotonic), what was probed and which calls were placed in it."""

    kind: str
    began: float = 0.0
    ended: float = 0.0
    probes: list[Probe] = field(default_factory=list)
    new_calls: list[str] = field(default_factory=list)


@pytest.fixture
async def own_stack(tmp_path: Path) -> AsyncIterator[tuple[ProcessStack, OwnCluster]]:
    """The simulator and one serve process on a migrated cluster of the test's own (reconciling every 2 s)."""
    cluster = OwnCluster()
    await asyncio.to_thread(cluster.start)
    try:
        engine = create_engine(cluster.url, pool_size=1)
        await migrate(engine)
        await engine.dispose()
        async with running_stack(cluster.url, tmp_path,
                                 serve_settings={"CONFCTL_RECONCILE_S": str(RECONCILE_S)}) as stack:
            yield stack, cluster
    finally:
        await asyncio.to_thread(cluster.close)


async def timed(client: httpx.AsyncClient, path: str, limit_s: float) -> Probe:
    """GET `path`, waiting at most twice its limit (so a hang is recorded, not waited out)."""
    started = time.monotonic()
    try:
        response = await client.get(path, timeout=2 * limit_s)
        status: int | None = response.status_code
    except httpx.HTTPError:
        status = None
    return Probe(path, status, time.monotonic() - started)


async def probe_until(stack: ProcessStack, over: asyncio.Event, outage: Outage, room: str) -> None:
    """/readyz and a read of `room`, every PROBE_EVERY_S, until the outage is over."""
    while not over.is_set():
        outage.probes += await asyncio.gather(timed(stack.api(), "/readyz", READY_LIMIT_S),
                                              timed(stack.api(), f"/v1/conferences/{room}", READ_LIMIT_S))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(over.wait(), PROBE_EVERY_S)


async def place_call(stack: ProcessStack, n: int) -> str:
    """A customer calls in (nothing waited for): its CallSid."""
    response = await stack.sim.post(stack.simulator.url + "/simulator/calls",
                                    json={"from": f"+1555123{n:04d}", "to": "+15559990000"})
    assert response.status_code == 200, response.text
    call_sid: str = response.json()["call_sid"]
    return call_sid


async def put_through(stack: ProcessStack, call_sid: str) -> None:
    """Within Twilio's 15 s the simulator (Twilio's truth) has the caller connected in room-{CallSid}."""
    room = f"room-{call_sid}"

    async def connected() -> None:
        truth = await stack.ground_truth(room)
        assert "customer" in {p["label"] for p in truth["participants"]}, truth

    await eventually(connected, within_s=WEBHOOK_LIMIT_S, explain=lambda: stack.describe(room))


async def through_outage(stack: ProcessStack, cluster: OwnCluster, outage: Outage, seconds: float,
                         live: list[str], first_caller: int) -> None:
    """Take PostgreSQL away for `seconds` while two callers call in, a live call hangs up, and reads and
    readiness probes run; then bring it back and wait until confctl is ready again."""
    if outage.kind == "stopped":
        await asyncio.to_thread(cluster.stop)
    else:
        cluster.freeze()
    outage.began = time.monotonic()
    over = asyncio.Event()
    probing = asyncio.ensure_future(probe_until(stack, over, outage, f"room-{live[-1]}"))
    try:
        outage.new_calls = list(await asyncio.gather(*(place_call(stack, first_caller + i) for i in range(2))))
        await stack.hang_up(live.pop(0))
        for call_sid in outage.new_calls:  # the callers are put through, database or not
            await put_through(stack, call_sid)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - outage.began)))
    finally:
        over.set()
        if outage.kind == "stopped":
            await asyncio.to_thread(cluster.restart)
        else:
            cluster.thaw()
        outage.ended = time.monotonic()
        await probing
    live += outage.new_calls

    async def ready() -> None:
        assert (await stack.api().get("/readyz")).status_code == 200

    await eventually(ready, within_s=10.0, explain=lambda: logs(stack))


async def logs(stack: ProcessStack) -> str:
    return "\n" + stack.tails()


def check_probes(outage: Outage) -> None:
    """Every probe in the outage answered 503, readiness within 1 s, reads within READ_LIMIT_S."""
    assert outage.probes, f"nothing was probed during the {outage.kind} database"
    for probe in outage.probes:
        limit = READY_LIMIT_S if probe.path == "/readyz" else READ_LIMIT_S
        assert probe.status == 503 and probe.took < limit, \
            f"{outage.kind} database: GET {probe.path} -> {probe.status} after {probe.took:.2f}s (limit {limit}s)"


def summary(outages: list[Outage], webhooks: list[Exchange]) -> str:
    """What the outages looked like from outside, for a failure message."""
    lines = []
    for o in outages:
        for path in ("/readyz", "/v1/"):
            took = [p.took for p in o.probes if p.path.startswith(path)]
            slowest = max(took, default=0.0)
            lines.append(f"{o.kind} {o.ended - o.began:.1f}s: {len(took)} x {path}, slowest {slowest:.3f}s")
        inside = [f"{e.path.removeprefix('/twilio/')} {e.status} {e.waited():.2f}s"
                  for e in webhooks if o.began <= e.received_at <= o.ended]
        lines.append(f"  webhooks: {', '.join(inside)}")
    return "\n".join(lines)


def form_of(exchange: Exchange) -> dict[str, str]:
    return dict(parse_qsl(exchange.body.decode(), keep_blank_values=True))


def acknowledged_key(exchange: Exchange) -> str | None:
    """The dedupe key of the fact a 2xx answer to `exchange` acknowledged (None: nothing to store)."""
    form, now = form_of(exchange), datetime.now(UTC)
    query = {k: v[0] for k, v in parse_qs(urlsplit(exchange.target).query).items()}
    if exchange.path == "/twilio/voice":
        return f"voice:{form['CallSid']}"
    if exchange.path == "/twilio/conference-status":
        callback = forms.conference_status(form, now)
        return callback.dedupe_key if callback.fact is not None else None
    if exchange.path == "/twilio/call-status" and "conference_id" in query:
        return forms.call_status(form, now, query.get("label"))[1]
    if exchange.path == "/twilio/recording-status" and "conference_id" in query:
        return forms.recording_status(form, now)[1]
    return None


async def stored_keys(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(sa.text("SELECT key FROM dedupe_keys"))).scalars())
    finally:
        await engine.dispose()


async def stored_twice(url: str) -> list[Any]:
    """Twilio facts stored more than once: the same fact (type, data) under the same causation."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(sa.text(
                "SELECT stream_id, metadata->>'causation', type, count(*) FROM events"
                " WHERE metadata->>'actor' = 'twilio'"
                " GROUP BY stream_id, metadata->>'causation', type, data::text HAVING count(*) > 1")))
    finally:
        await engine.dispose()


async def stored_after(stack: ProcessStack, call_sid: str) -> None:
    """confctl has the call placed during the outage (its voice fact was stored once it could be)."""
    room = f"room-{call_sid}"

    async def stored() -> None:
        response = await stack.api().get(f"/v1/conferences/{room}")
        assert response.status_code == 200 and response.json()["customer"] is not None, response.text

    await eventually(stored, within_s=10.0, explain=lambda: logs(stack))


async def views_agree(stack: ProcessStack, room: str) -> None:
    """Within 30 s confctl's conference and the simulator's agree on its status and on who is connected."""

    async def agree() -> None:
        ours = await stack.conference(room)
        truth = await stack.ground_truth(room)
        connected = {p["label"] for p in ours["participants"] if p["status"] == "joined"}
        assert (ours["status"], connected) == (truth["status"], {p["label"] for p in truth["participants"]}), \
            f"{room}: confctl {ours['status']} {sorted(connected)}, simulator {truth['status']} " \
            f"{sorted(p['label'] for p in truth['participants'])}"

    await eventually(agree, within_s=30.0, explain=lambda: stack.describe(room))


async def test_confctl_rides_out_a_stopped_and_a_frozen_database(
        own_stack: tuple[ProcessStack, OwnCluster]) -> None:
    """PostgreSQL stopped for 10 s, then frozen for 12 s, under calls, callbacks and reads: bounded 503s,
    callers still put through, and afterwards (no confctl restart) the outage's calls stored, no
    acknowledged fact missing, none stored twice, and confctl's view equal to the simulator's."""
    stack, cluster = own_stack
    live = [(await stack.inbound_call(from_=f"+1555123{i:04d}"))[0] for i in range(3)]
    everyone = list(live)
    outages = [Outage("stopped"), Outage("frozen")]
    await through_outage(stack, cluster, outages[0], 10.0, live, first_caller=10)
    await through_outage(stack, cluster, outages[1], 12.0, live, first_caller=20)

    webhooks = [e for e in stack.front.exchanges if e.path.startswith("/twilio/")]
    print(summary(outages, webhooks))  # shown by pytest for a failed test only
    for outage in outages:
        check_probes(outage)
    late = [e.describe() for e in webhooks if e.waited() > WEBHOOK_LIMIT_S or e.status is None]
    assert not late, "webhooks answered after Twilio's 15 s (or never):\n" + "\n".join(late)
    wrong = [e.describe() for e in webhooks
             if e.status not in ((200,) if e.path == "/twilio/voice" else (204, 503))]
    assert not wrong, "webhooks answered other than TwiML, 204 or 503:\n" + "\n".join(wrong)
    refused = [e for e in webhooks if e.status == 503]
    assert refused, "no callback arrived while the database was away: the test did not test"
    assert stack.serve.starts == 1 and stack.serve.running, stack.serve.status()

    placed = [sid for outage in outages for sid in outage.new_calls]
    for call_sid in placed:
        await stored_after(stack, call_sid)

    acknowledged = {key: e for e in webhooks if e.status is not None and 200 <= e.status < 300
                    and (key := acknowledged_key(e)) is not None}
    missing = set(acknowledged) - await stored_keys(cluster.url)
    assert not missing, "acknowledged but not stored:\n" + "\n".join(acknowledged[k].describe() for k in missing)
    assert await stored_twice(cluster.url) == []

    # What the 503s refused comes back through Twilio's retries and confctl's periodic reconciliation.
    for call_sid in everyone + placed:
        await views_agree(stack, f"room-{call_sid}")
