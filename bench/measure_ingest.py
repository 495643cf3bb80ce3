"""Ingest: confctl and the minimal app driven alternately by wrk with the same kind of signed callbacks.

For each pass, each concurrency and each app (confctl first, then the minimal app):
1. the app's rate at that concurrency: the previous pass's, or (first pass) a short wrk warm-up on fresh
   conferences;
2. fresh conferences, as many as the app joins in about JOIN_S seconds (at least two per connection, at most
   `conferences`): each customer's participant-join is sent once (bench/blast.py, as many connections as the
   run), which also warms the app up;
3. the measured wrk run: hold, unhold, mute, unmute, hold, … (SequenceNumber 2, 3, …) on those live
   conferences, round by round. The set is 2.5 times what the rate needs (at most `rate_cap` per second); a
   wrk thread that still runs out stops (no repeats) and the run is marked as a lower bound.
Every callback is new to the app that gets it; both apps get requests of the same size and shape, signed
over confctl's public URL.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import signed
from blast import send_all
from wrkrun import THREADS, WrkResult, run_wrk


@dataclass(frozen=True)
class Target:
    """An app under test: where wrk sends, and how many rows its log holds (what a stored callback adds)."""

    name: str
    url: str
    stored: Callable[[], Coroutine[Any, Any, int]]
    ensure: Callable[[], None]  # (re)start the app if it is not running; raises when it cannot
    log_tail: Callable[[], str]


@dataclass
class Run:
    """One measured wrk run."""

    app: str
    concurrency: int
    pass_no: int
    result: WrkResult | None = None
    stored: int | None = None
    error: str | None = None
    conferences: int = 0
    join_failures: int = 0
    other_cpu: float | None = None  # share of the machine's CPU other processes used during the run


@dataclass(frozen=True)
class IngestConfig:
    passes: int
    duration_s: float
    warmup_s: float
    concurrencies: list[int]
    rate_cap: int
    conferences: int
    workdir: Path
    public_url: str  # confctl's: every signature is over it
    other_cpu_s: Callable[[], float]  # CPU seconds spent by other processes so far (a running total)


# A run has as many live conferences as the app joins in about JOIN_S seconds (their joins are sent before the
# run, one by one), at least two per connection (two requests in flight rarely hit one conference), at most
# `conferences`.
JOIN_S = 1.0
WARMUP_CONFERENCES = 400


def _size(rate: float, seconds: float, cfg: IngestConfig, connections: int) -> int:
    wanted = int(rate * seconds * 2.5) + 20 * connections
    return max(2000, min(wanted, int(cfg.rate_cap * seconds)))


def _rate(target: Target, connections: int, cfg: IngestConfig) -> float:
    """The app's rate at this concurrency, from a short wrk warm-up on fresh conferences."""
    warm = signed.write_ingest_set(cfg.workdir, "warm", cfg.public_url, _size(cfg.rate_cap, cfg.warmup_s, cfg,
                                   connections), min(cfg.conferences, WARMUP_CONFERENCES), THREADS)
    try:
        return run_wrk(target.url, connections, cfg.warmup_s, warm.prefix).rps
    finally:
        warm.remove()


def _join(target: Target, set_id: int, conferences: int, connections: int, cfg: IngestConfig) -> int:
    """Every conference's customer joins (SequenceNumber 1), each sent once; how many failed."""
    host, _, port = target.url.removeprefix("http://").partition(":")
    joins = [signed.http_request(f"{host}:{port}", cfg.public_url, signed.cycle_params(signed.Conf.of(set_id, c), 1))
             for c in range(conferences)]
    return asyncio.run(send_all(host, int(port), joins, connections=connections)).failed


def _one(target: Target, connections: int, pass_no: int, cfg: IngestConfig, rates: dict[tuple[str, int], float]
         ) -> Run:
    """Joins, then the measured run: hold / unhold / mute / unmute on those live conferences."""
    run = Run(app=target.name, concurrency=connections, pass_no=pass_no)
    target.ensure()
    rate = rates.get((target.name, connections)) or _rate(target, connections, cfg)
    run.conferences = max(2 * connections, min(cfg.conferences, int(rate * JOIN_S)))
    set_id = signed.next_set_id()
    run.join_failures = _join(target, set_id, run.conferences, connections, cfg)  # also the warm-up
    total = _size(rate, cfg.duration_s, cfg, connections)
    measured = signed.write_ingest_set(cfg.workdir, "run", cfg.public_url, total, run.conferences, THREADS,
                                       set_id=set_id, first_seq=2)
    try:
        time.sleep(0.2)
        before = asyncio.run(target.stored())
        other, started = cfg.other_cpu_s(), time.monotonic()
        run.result = run_wrk(target.url, connections, cfg.duration_s, measured.prefix)
        run.other_cpu = (cfg.other_cpu_s() - other) / ((time.monotonic() - started) * (os.cpu_count() or 1))
        time.sleep(0.3)  # requests still in flight when wrk stopped
        run.stored = asyncio.run(target.stored()) - before
    finally:
        measured.remove()
    if run.result.rps:
        rates[(target.name, connections)] = run.result.rps
    return run


def describe(run: Run) -> str:
    """One line per run, for the console."""
    head = f"pass {run.pass_no} c={run.concurrency:<3} {run.app:<8}"
    if run.error or run.result is None:
        return f"{head} FAILED: {run.error}"
    r = run.result
    text = (f"{head} {r.rps:8.1f} req/s  p50 {_ms(r.p50_ms)}  p99 {_ms(r.p99_ms)}  "
            f"{r.requests} answered, {run.stored} stored, {run.conferences} live conferences")
    if run.join_failures:
        text += f"  JOINS FAILED {run.join_failures}"
    if r.non_2xx:
        text += f"  NON-2xx {r.non_2xx}"
    if any(r.socket_errors.values()):
        text += f"  socket errors {r.socket_errors}"
    if run.other_cpu is not None and run.other_cpu > 0.05:
        text += f"  (other processes took {run.other_cpu:.0%} of the CPU)"
    if r.exhausted:
        text += "  (ran out of fresh callbacks: a lower bound)"
    return text


def probe(target: Target, cfg: IngestConfig) -> str | None:
    """Send one fresh callback; None when it is answered 2xx, else what went wrong (printed before the runs)."""
    conf = signed.Conf.of(signed.next_set_id(), 0)
    host, _, port = target.url.removeprefix("http://").partition(":")
    request = signed.http_request(f"{host}:{port}", cfg.public_url, signed.cycle_params(conf, 1))
    result = asyncio.run(send_all(host, int(port), [request], connections=1, timeout_s=30))
    return None if result.ok == 1 else (result.first_error or str(dict(result.statuses)))


def measure(targets: list[Target], cfg: IngestConfig, say: Callable[[str], None]) -> list[Run]:
    """Every pass × concurrency × app, alternating apps; a failed run is recorded and the others still run."""
    runs: list[Run] = []
    rates: dict[tuple[str, int], float] = {}  # the last measured rate of each app and concurrency
    for target in targets:
        try:
            target.ensure()
            problem = probe(target, cfg)
        except Exception as exc:  # reported, and the runs are still tried
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            say(f"!!! {target.name} does not store a signed callback: {problem}")
    for pass_no in range(1, cfg.passes + 1):
        for connections in cfg.concurrencies:
            for target in targets:
                try:
                    run = _one(target, connections, pass_no, cfg, rates)
                except Exception as exc:  # one failed run must not stop the bench
                    run = Run(app=target.name, concurrency=connections, pass_no=pass_no,
                              error=f"{type(exc).__name__}: {exc}")
                runs.append(run)
                say(describe(run))
                if run.result is not None and run.result.non_2xx and target.name == "confctl":
                    say(f"!!! confctl answered {run.result.non_2xx} non-2xx responses (c={connections}, pass "
                        f"{pass_no}); its log ends with:\n{target.log_tail()}")
    return runs


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def table(runs: list[Run], concurrencies: list[int]) -> list[str]:
    """The markdown table: medians over passes per concurrency, and the ratio confctl / minimal."""
    rows = ["| concurrency | confctl req/s | minimal req/s | ratio (per pass) | confctl p50 / p99 | "
            "minimal p50 / p99 | confctl non-2xx |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in concurrencies:
        ok = {app: [r for r in runs if r.app == app and r.concurrency == c and r.result is not None]
              for app in ("confctl", "minimal")}
        med: dict[str, dict[str, float | None]] = {
            app: {k: _median([getattr(r.result, k) for r in found if getattr(r.result, k) is not None])
                  for k in ("rps", "p50_ms", "p99_ms")} for app, found in ok.items()}
        ratio = "n/a"
        if med["confctl"]["rps"] and med["minimal"]["rps"]:
            per_pass = []
            for a in ok["confctl"]:
                b = next((r for r in ok["minimal"] if r.pass_no == a.pass_no), None)
                if b is not None and b.result is not None and a.result is not None and b.result.rps:
                    per_pass.append(a.result.rps / b.result.rps)
            spread = f" ({min(per_pass):.3f}-{max(per_pass):.3f})" if len(per_pass) > 1 else ""
            ratio = f"{med['confctl']['rps'] / med['minimal']['rps']:.3f}{spread}"
        failed = [r for r in runs if r.concurrency == c and r.result is None]
        non2xx = sum(r.result.non_2xx for r in ok["confctl"] if r.result is not None)
        lower = any(r.result.exhausted for found in ok.values() for r in found if r.result is not None)

        rate = {app: "failed" if m["rps"] is None else ("≥" if lower else "") + f"{m['rps']:,.0f}"
                for app, m in med.items()}
        lat = {app: f"{_ms(m['p50_ms'])} / {_ms(m['p99_ms'])}" for app, m in med.items()}
        rows.append(f"| {c} | {rate['confctl']} | {rate['minimal']} | {ratio} | {lat['confctl']} | "
                    f"{lat['minimal']} | {non2xx}{' **!**' if non2xx else ''}"
                    f"{f' ({len(failed)} run(s) failed)' if failed else ''} |")
    return rows
