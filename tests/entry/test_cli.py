"""The `confctl` command: migrate, rebuild-projections and serve, against the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from confctl.adapters.database import head_revision
from confctl.entry.cli import main
from tests.support.twilio_forms import AUTH_TOKEN, PUBLIC_URL, post_signed, sign, whole_call


async def test_migrate_is_idempotent(database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`confctl migrate` on a database already at head changes nothing and says so."""
    monkeypatch.setenv("CONFCTL_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert "migrations applied" in capsys.readouterr().out
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()


async def test_rebuild_projections_restores_the_read_model(
    client: httpx.AsyncClient, database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the read model is lost, `confctl rebuild-projections` brings every conference back from the log."""
    for cb in whole_call("CA" + "7" * 32, "CA" + "8" * 32, "CF" + "9" * 32)[:5]:
        await post_signed(client, cb.path, cb.params)
    before = (await client.get("/v1/conferences")).json()
    async with engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE conferences, call_legs"))
    monkeypatch.setenv("CONFCTL_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["rebuild-projections"]) == 0
    assert (await client.get("/v1/conferences")).json() == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_and_stops_on_sigint(database_url: str, tmp_path: Path) -> None:
    """`confctl serve` on CONFCTL_DATABASE_URL is ready (database reachable, migrated) and stops cleanly on Ctrl-C."""
    port = _free_port()
    env = os.environ | {"CONFCTL_DATABASE_URL": database_url, "CONFCTL_API_KEYS": "[]"}
    process = subprocess.Popen([sys.executable, "-m", "confctl.entry.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        assert _readiness(port, time.monotonic() + 30) == {"status": "ok", "detail": None}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/conferences", timeout=1).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output


def _readiness(port: int, deadline: float) -> object:
    """What /readyz says once the server answers (None if it never did before the deadline)."""
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).json()
        except httpx.TransportError:
            time.sleep(0.2)
    return None


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_serve_with_two_workers_shares_the_port_and_stores_callbacks(database_url: str, engine: AsyncEngine,
                                                                    tmp_path: Path) -> None:
    """`confctl serve --workers 2` runs two processes on one port and one database: callbacks sent to it are
    stored once each, and Ctrl-C stops them all."""
    port = _free_port()
    env = os.environ | {"CONFCTL_DATABASE_URL": database_url, "CONFCTL_API_KEYS": "[]",
                        "CONFCTL_PUBLIC_URL": PUBLIC_URL, "CONFCTL_TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "confctl.entry.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(_children(process.pid)) < 2:
            time.sleep(0.2)
        assert _readiness(port, deadline) == {"status": "ok", "detail": None}
        workers = [pid for pid in _children(process.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            calls = whole_call("CA" + "7" * 32, "CA" + "8" * 32, "CF" + "9" * 32)
            for callback in calls:
                sent = client.post(callback.path, data=callback.params,
                                   headers={"X-Twilio-Signature": sign(callback.path, callback.params)})
                assert sent.status_code in (200, 204), sent.text
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
