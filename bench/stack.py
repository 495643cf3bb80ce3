"""The processes of the benchmark: an embedded PostgreSQL, `confctl serve`, `confctl simulator`, the minimal app.

Everything listens on 127.0.0.1 only. Each server is a real process in its own session (so Ctrl-C reaches the
harness, which then stops them in order: servers first, PostgreSQL last); its output goes to
`WORKDIR/logs/NAME.log`. `Stack.close()` stops every process it started, by its pid, and is called from a
`finally`, so a failure or Ctrl-C leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import signed
from cpu import machine_busy_s, own_cpu_s, postgres_cpu_s, process_cpu_s

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
API_KEY = "bench-key-0123456789abcdef"
API_KEYS = [{"name": "bench", "key": API_KEY, "scopes": ["read", "control", "supervise"]}]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Proc:
    """A server process the stack started."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class Pg:
    """The embedded PostgreSQL: databases reached over its unix socket."""

    socket_dir: str

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres:@/{database}?host={self.socket_dir}"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    async def connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(host=self.socket_dir, user="postgres", database=database)

    async def create_database(self, database: str) -> None:
        conn = await self.connect("postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    async def scalar(self, database: str, sql: str) -> Any:
        conn = await self.connect(database)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()


class Stack:
    """Starts and stops the benchmark's processes; confctl runs from `source` (a tree with src/, migrations/)."""

    def __init__(self, workdir: Path, source: Path) -> None:
        self.workdir = workdir
        self.source = source
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self._embedded: Any = None
        self.pg: Pg | None = None
        self.pg_cpu_s = 0.0  # CPU seconds PostgreSQL used, taken just before it is stopped

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # PostgreSQL -------------------------------------------------------------------------------------------

    def start_pg(self) -> Pg:
        """confctl's own embedded PostgreSQL, data in WORKDIR/pgdata."""
        sys.path.insert(0, str(self.source / "src"))
        import structlog

        from confctl.adapters.embedded_pg import EmbeddedPostgres

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

        self._embedded = EmbeddedPostgres(self.workdir / "pgdata")
        url = self._embedded.start()
        self.pg = Pg(socket_dir=parse_qs(urlsplit(url).query)["host"][0])
        return self.pg

    # confctl ----------------------------------------------------------------------------------------------

    def confctl_env(self, database_url: str, public_url: str, api_base: str | None) -> dict[str, str]:
        """The environment of a confctl process: ours only (no CONFCTL_* of the caller's shell, no .env)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONFCTL_")}
        env |= {
            "PYTHONPATH": str(self.source / "src"),
            "CONFCTL_DATABASE_URL": database_url,
            "CONFCTL_TWILIO_ACCOUNT_SID": signed.ACCOUNT_SID,
            "CONFCTL_TWILIO_AUTH_TOKEN": signed.AUTH_TOKEN,
            "CONFCTL_PUBLIC_URL": public_url,
            "CONFCTL_API_KEYS": json.dumps(API_KEYS),
            "CONFCTL_LOG_LEVEL": "WARNING",
        }
        if api_base:
            env["CONFCTL_TWILIO_API_BASE"] = api_base
        return env

    def confctl_command(self, args: list[str], database_url: str, timeout_s: float = 600) -> tuple[float, str]:
        """Run `confctl ARGS` to completion; (seconds, output). Raises on a non-zero exit."""
        env = self.confctl_env(database_url, "http://127.0.0.1:1", None)
        started = time.perf_counter()
        done = subprocess.run([str(VENV_BIN / "confctl"), *args], env=env, cwd=self.workdir, capture_output=True,
                              text=True, timeout=timeout_s)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"confctl {' '.join(args)} exited {done.returncode}: "
                               f"{(done.stderr or done.stdout).strip()[-1500:]}")
        return elapsed, done.stdout + done.stderr

    def start_confctl(self, name: str, port: int, database_url: str, api_base: str | None,
                      workers: int = 1, reconcile_s: float | None = None) -> Proc:
        """`confctl serve --host 127.0.0.1 --port PORT [--workers N]`, signatures checked against
        http://127.0.0.1:PORT; `reconcile_s` sets CONFCTL_RECONCILE_S (None: confctl's default)."""
        env = self.confctl_env(database_url, f"http://{HOST}:{port}", api_base)
        if reconcile_s is not None:
            env["CONFCTL_RECONCILE_S"] = f"{reconcile_s:g}"
        argv = [str(VENV_BIN / "confctl"), "serve", "--host", HOST, "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        return self._wait_up(self.spawn(name, argv, env, port), "/healthz")

    def start_simulator(self, port: int, webhook_base: str) -> Proc:
        env = self.confctl_env("", webhook_base, None)  # the simulator needs no database: empty is unset
        argv = [str(VENV_BIN / "confctl"), "simulator", "--host", HOST, "--port", str(port),
                "--webhook-base", webhook_base]
        return self._wait_up(self.spawn("simulator", argv, env, port), "/simulator/requests")

    def start_minimal(self, port: int, dsn: str) -> Proc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONFCTL_")}
        argv = [sys.executable, str(Path(__file__).parent / "minimal_app.py"), "--host", HOST, "--port", str(port),
                "--dsn", dsn]
        return self._wait_up(self.spawn("minimal", argv, env, port), "/healthz")

    # processes --------------------------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str], port: int | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, env=dict(env), cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        proc = Proc(name=name, popen=popen, log=log, port=port)
        self.procs.append(proc)
        return proc

    def _wait_up(self, proc: Proc, path: str, timeout_s: float = 60) -> Proc:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not proc.alive():
                self.procs.remove(proc)
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}) on start-up:\n{proc.tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError), \
                    urllib.request.urlopen(proc.url + path, timeout=2) as answer:
                if answer.status == 200:
                    return proc
            time.sleep(0.1)
        self.stop(proc)
        raise RuntimeError(f"{proc.name} did not answer {path} within {timeout_s:.0f} s:\n{proc.tail()}")

    def stop(self, proc: Proc) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL; only this process, by its pid."""
        if proc in self.procs:
            self.procs.remove(proc)
        for sig, wait_s in ((signal.SIGINT, 8.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if proc.popen.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(wait_s)

    def cpu_s(self) -> float:
        """CPU seconds used so far by the bench: this process, its children (running or reaped), PostgreSQL."""
        live = sum(process_cpu_s(p.pid, with_reaped_children=True) for p in self.procs if p.alive())
        pg = postgres_cpu_s(self.workdir / "pgdata") if self._embedded is not None else self.pg_cpu_s
        return own_cpu_s() + live + pg

    def other_cpu_s(self) -> float:
        """CPU seconds the machine spent on anything else since boot (a running total: take differences)."""
        return machine_busy_s() - self.cpu_s()

    def close(self) -> None:
        """Stop every server (newest first), then PostgreSQL."""
        for proc in reversed(list(self.procs)):
            self.stop(proc)
        if self._embedded is not None:
            self.pg_cpu_s = postgres_cpu_s(self.workdir / "pgdata")
            with contextlib.suppress(Exception):
                self._embedded.stop()
            self._embedded = None
