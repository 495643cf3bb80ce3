"""The voice URL `confctl dev` and `confctl simulator` give the simulated number carries the connection overrides."""

from __future__ import annotations

import socket

import httpx

from confctl.entry.cli_dev import Credentials, banner, simulator_for, voice_url
from confctl.entry.settings import Settings
from confctl.service.webhook_urls import CONNECTION_OVERRIDES


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_recommended_voice_url_is_twilio_voice_with_the_overrides() -> None:
    """confctl's `/twilio/voice` under the given base, then `#` and the overrides."""
    assert voice_url("https://confctl.example.com", Settings()) == (
        "https://confctl.example.com/twilio/voice#ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx")
    lines = banner(Settings(public_url="http://127.0.0.1:8000"), "http://127.0.0.1:8010", None)
    assert f"http://127.0.0.1:8000/twilio/voice#{CONNECTION_OVERRIDES}" in lines


async def test_the_dev_simulator_fetches_the_voice_url_under_its_overrides() -> None:
    """An inbound call to the dev simulator while confctl is down: the refused voice fetch is tried rc+1 times."""
    base = f"http://127.0.0.1:{_unused_port()}"
    simulator = simulator_for(Credentials("AC" + "3" * 32, "dev-token", invented=True), base, Settings())
    try:
        assert simulator.voice_url == f"{base}/twilio/voice#{CONNECTION_OVERRIDES}"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim") as c:
            response = await c.post("/simulator/calls", json={"from": "+15550001", "to": "+15559999"})
            assert response.status_code == 200
        await simulator.settle()
        voice = [e for e in simulator.runtime.delivery.log if e["kind"] == "voice"]
        assert [(e["attempt"], e["failure"]) for e in voice] == [(n, "ct") for n in range(1, 7)]
        assert {e["url"] for e in voice} == {f"{base}/twilio/voice"}
    finally:
        await simulator.aclose()
