"""Run the simulator alone under uvicorn (`confctl simulator --port 8010 --webhook-base URL`)."""

from __future__ import annotations

import uvicorn

from confctl.simulator.app import SimulatorConfig, create_simulator


async def run_simulator(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8010) -> None:
    """Serve until cancelled or interrupted, then close the simulator's timers and HTTP client."""
    simulator = create_simulator(config)
    server = uvicorn.Server(uvicorn.Config(simulator.app, host=host, port=port, log_level="info", lifespan="off"))
    try:
        await server.serve()
    finally:
        await simulator.aclose()
