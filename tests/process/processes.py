"""Real `confctl serve` and `confctl simulator` processes: start, wait until ready, SIGKILL, start again.

Each process is the installed `confctl` command line run with this interpreter, in the test's temporary
directory (so no `.env` of the working tree leaks in), with exactly the CONFCTL_ settings the test gives
it. Its output goes to a log file there, appended across restarts; `Process.tail()` quotes it in failure
messages. A process is only ever stopped by its own pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ACCOUNT_SID = "AC" + "d" * 32
AUTH_TOKEN = "process-tests-auth-token"
API_KEY = "ops-process-tests-key"
READY_TIMEOUT_S = 30.0
# How often each serve process sweeps the outbox for effects left by dead processes (a setting of the
# outbox write path; unknown settings are ignored by older code).
OUTBOX_POLL_S = 0.2


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inherited_env() -> dict[str, str]:
    """This process's environment without any CONFCTL_ variable: each child gets only what a test sets."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CONFCTL_")}


def serve_env(database_url: str, twilio_api_base: str, public_url: str) -> dict[str, str]:
    """The settings of a `confctl serve` on the test database, calling Twilio at `twilio_api_base`."""
    keys = [{"name": "ops", "key": API_KEY, "scopes": ["read", "control", "supervise"]}]
    return {
        "CONFCTL_DATABASE_URL": database_url,
        "CONFCTL_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CONFCTL_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CONFCTL_TWILIO_API_BASE": twilio_api_base,
        "CONFCTL_PUBLIC_URL": public_url,
        "CONFCTL_API_KEYS": json.dumps(keys),
        "CONFCTL_OUTBOX_POLL_S": str(OUTBOX_POLL_S),
        # The simulator is local: a Twilio request unanswered after 3 s is lost (the lost-answer tests wait it out).
        "CONFCTL_TWILIO_TIMEOUT_S": "3",
    }


class Process:
    """One server process, restartable on the same port with the same arguments and environment."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int, ready_path: str,
                 workdir: Path) -> None:
        self.name = name
        self.argv = [sys.executable, "-m", "confctl.entry.cli", *args]
        self.env = inherited_env() | env
        self.port = port
        self.ready_path = ready_path
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.starts = 0
        self.kills = 0
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    async def start(self) -> Process:
        """Start the process and return once its ready URL answers 200."""
        self.spawn()
        await self._until_ready()
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it (Popen returns at once)."""
        assert not self.running, f"{self.name} is already running (pid {self.pid})"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {self.name} start #{self.starts}: {' '.join(self.argv[3:])}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def _until_ready(self) -> None:
        began = time.monotonic()
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() - began < READY_TIMEOUT_S:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited with {self._exit_code()} while starting:\n{self.tail()}")
                try:
                    if (await client.get(self.url + self.ready_path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT_S}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, by pid: no shutdown code runs, exactly as when a machine dies. Waits for the exit."""
        if self._popen is None or self._popen.poll() is not None:
            return
        os.kill(self._popen.pid, signal.SIGKILL)
        self._popen.wait(timeout=10)
        self.kills += 1
        with self.log_path.open("ab") as log:
            log.write(f"===== {self.name} SIGKILLed (pid {self._popen.pid})\n".encode())

    def _exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def status(self) -> str:
        state = "running" if self.running else f"stopped ({self._exit_code()})"
        return f"{self.name} on :{self.port} {state}, started {self.starts}x, killed {self.kills}x, log {self.log_path}"

    def tail(self, lines: int = 30) -> str:
        """The end of the process's log."""
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(f"  | {line}" for line in text[-lines:])


def confctl_serve(name: str, port: int, env: dict[str, str], workdir: Path) -> Process:
    """`confctl serve` on 127.0.0.1:`port`, ready when /readyz is 200 (database reachable, migrated)."""
    return Process(name, ["serve", "--host", "127.0.0.1", "--port", str(port)], env, port, "/readyz", workdir)


def simulator(port: int, webhook_base: str, workdir: Path) -> Process:
    """`confctl simulator` on 127.0.0.1:`port`, sending voice requests and callbacks to `webhook_base`."""
    env = {"CONFCTL_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "CONFCTL_TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    args = ["simulator", "--host", "127.0.0.1", "--port", str(port), "--webhook-base", webhook_base]
    return Process("simulator", args, env, port, "/simulator/faults", workdir)
