"""`run_simulator` serves the simulator over real HTTP until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx

from confctl.simulator import SimulatorConfig
from confctl.simulator.server import run_simulator
from tests.simulator.conftest import ACCOUNT, TOKEN, api


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_run_simulator_serves_until_cancelled() -> None:
    """The standalone server answers REST and control requests on its port, and stops when cancelled."""
    port = _free_port()
    config = SimulatorConfig(ACCOUNT, TOKEN, "http://127.0.0.1:9", time_scale=0.01)
    task = asyncio.create_task(run_simulator(config, "127.0.0.1", port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, auth=(ACCOUNT, TOKEN)) as client:
            for _ in range(200):
                with contextlib.suppress(httpx.ConnectError):
                    response = await client.get(api("/Conferences.json"))
                    break
                await asyncio.sleep(0.02)
            assert response.status_code == 200
            assert response.json()["conferences"] == []
            assert (await client.get("/simulator/faults")).json()["rest_error_rate"] == 0.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.done()
