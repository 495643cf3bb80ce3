"""`confctl dev` as a user runs it: one command brings everything up; Ctrl-C takes everything down."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from confctl.entry.cli_dev import listen, server_for
from tests.support.pg_cluster import postgres_processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, check: object, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()  # type: ignore[operator]
        except (httpx.TransportError, OSError, ValueError, KeyError):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_dev_runs_a_call_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    """confctl dev serves API and simulator wired together; SIGINT exits 0 and stops the embedded PostgreSQL."""
    api_port, sim_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFCTL_")}
    env["XDG_DATA_HOME"] = str(tmp_path)  # the default data directory is $XDG_DATA_HOME/confctl
    process = subprocess.Popen(
        [sys.executable, "-m", "confctl.entry.cli", "dev", "--port", str(api_port), "--simulator-port", str(sim_port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    try:
        credentials = tmp_path / "confctl" / "dev.json"
        _wait_for("dev.json", lambda: json.loads(credentials.read_text())["api_key"])
        key = json.loads(credentials.read_text())["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        call_sid = httpx.post(f"{sim}/simulator/calls", json={"from": "+15551230001", "to": "+15559990000"},
                              timeout=10).json()["call_sid"]
        room = f"room-{call_sid}"
        conference = _wait_for("the conference", lambda: httpx.get(f"{api}/v1/conferences/{room}", headers=headers,
                                                                   timeout=5).json()["participants"])
        assert [p["label"] for p in conference] == ["customer"]  # type: ignore[union-attr]
        assert postgres_processes(tmp_path / "confctl" / "pgdata")
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert process.returncode == 0, output
    assert "confctl dev is running" in output
    time.sleep(0.5)
    assert postgres_processes(tmp_path / "confctl" / "pgdata") == []


async def test_dev_servers_answer_back_to_back_keep_alive_requests_without_a_nagle_stall() -> None:
    """The dev stack's sockets set TCP_NODELAY: keep-alive requests do not each wait for a delayed ACK (~40 ms)."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, int]:
        return {"ok": 1}

    sock = listen("127.0.0.1", 0)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    server, bound = server_for(app, sock)
    serving = asyncio.create_task(server.serve(sockets=[bound]))
    try:
        for _ in range(250):  # up to 5 s
            if server.started:
                break
            await asyncio.sleep(0.02)

        def twenty_requests() -> list[float]:
            conn = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=5)
            took = []
            for _ in range(20):
                start = time.perf_counter()
                conn.request("GET", "/ping")
                conn.getresponse().read()
                took.append(time.perf_counter() - start)
            conn.close()
            return sorted(took)

        took = await asyncio.to_thread(twenty_requests)
        assert took[len(took) // 2] < 0.02, f"median keep-alive request took {took[len(took) // 2] * 1000:.1f} ms"
    finally:
        server.should_exit = True
        await serving
