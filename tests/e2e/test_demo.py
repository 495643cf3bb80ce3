"""`confctl demo`'s script runs end to end against the in-process stack and prints who hears whom."""

from __future__ import annotations

import asyncio

import pytest

from confctl.entry.demo import Demo
from tests.e2e.conftest import Stack, every_delivery_mode

pytestmark = every_delivery_mode


@pytest.mark.parametrize("late_ms", [0, 40])
async def test_demo_script_runs_and_prints_the_timeline(stack: Stack, late_ms: int) -> None:
    """Every step of the scripted call completes; the timeline shows hold music, consult, coach and barge, also
    when a step's callbacks are still on their way as the next step is answered (`late_ms` before each)."""
    if late_ms:
        await stack.set_faults(callback_delay_ms=late_ms)
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
