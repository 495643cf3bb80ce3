"""`confctl demo`'s script runs end to end against the in-process stack and prints who hears whom."""

from __future__ import annotations

import asyncio

from confctl.entry.demo import Demo
from tests.e2e.conftest import Stack


async def test_demo_script_runs_and_prints_the_timeline(stack: Stack) -> None:
    """Every step of the scripted call completes; the timeline shows hold music, consult, coach and barge."""
    lines: list[str] = []
    await asyncio.wait_for(Demo(stack.api, stack.sim, out=lines.append).run(), timeout=60)
    text = "\n".join(lines)
    assert "customer           hears music" in text
    assert "alice              hears bob" in text
    assert "bob                hears customer, sue" in text
    assert "customer           hears bob, sue" in text
    assert "Conference ended" in text
    conference = (await stack.api.get("/v1/conferences", params={"status": "completed"})).json()["items"]
    assert len(conference) == 1
