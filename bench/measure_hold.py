"""PATCH hold through confctl against the simulator's own round trip for the same participant update.

A real call runs on `confctl simulator`: a customer calls in (the simulator fetches confctl's voice webhook),
confctl dials an agent into the conference, and once both are joined the customer is held and unheld
`n` times through `PATCH /v1/conferences/{id}/participants/customer`, and `n` times directly on the
simulator (`POST /2010-04-01/Accounts/{sid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json`,
`Hold=true|false`, basic auth). Both in blocks of 20, alternating, one request at a time on a keep-alive
connection; after each block the harness waits until confctl has heard the last callback, so every PATCH
starts from a settled state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import signed
from stack import API_KEY, Proc

BLOCK = 20


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def _until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


async def _measure(confctl: Proc, simulator: Proc, n: int) -> dict[str, Any]:
    api, sim = confctl.url, simulator.url
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(timeout=30.0) as client:
        answer = await client.post(f"{sim}/simulator/calls", json={"from": "+15551230001", "to": "+15559990000"})
        answer.raise_for_status()
        call_sid = answer.json()["call_sid"]
        room = f"room-{call_sid}"

        async def participant(label: str) -> dict[str, Any] | None:
            got = await client.get(f"{api}/v1/conferences/{room}/participants/{label}", headers=auth)
            return got.json() if got.status_code == 200 else None

        async def joined(label: str) -> bool:
            found = await participant(label)
            return found is not None and found["status"] == "joined"

        await _until("the customer in confctl's conference", lambda: joined("customer"))
        added = await client.post(f"{api}/v1/conferences/{room}/participants", headers=auth,
                                  json={"to": "client:alice", "role": "agent"})
        if added.status_code != 202:
            raise RuntimeError(f"adding the agent: {added.status_code} {added.text[:300]}")
        agent = added.json()["label"]
        await _until("the agent joined", lambda: joined(agent))
        truth = (await client.get(f"{sim}/simulator/conferences/{room}")).json()
        rest = (f"{sim}/2010-04-01/Accounts/{signed.ACCOUNT_SID}/Conferences/{truth['sid']}/Participants/"
                f"{call_sid}.json")
        basic = httpx.BasicAuth(signed.ACCOUNT_SID, signed.AUTH_TOKEN)

        async def settled() -> bool:
            found = await participant("customer")
            return found is not None and found["hold"] is False

        via_confctl: list[float] = []
        direct: list[float] = []
        failures: Counter[str] = Counter()
        for _ in range(0, n, BLOCK):
            for i in range(BLOCK):
                t = time.perf_counter()
                got = await client.post(rest, data={"Hold": "true" if i % 2 == 0 else "false"}, auth=basic)
                direct.append((time.perf_counter() - t) * 1000)
                if got.status_code != 200:
                    failures[f"simulator {got.status_code}"] += 1
            await _until("confctl to see the customer unheld", settled)
            for i in range(BLOCK):
                t = time.perf_counter()
                got = await client.patch(f"{api}/v1/conferences/{room}/participants/customer", headers=auth,
                                         json={"hold": i % 2 == 0})
                via_confctl.append((time.perf_counter() - t) * 1000)
                if got.status_code != 200:
                    failures[f"confctl {got.status_code}: {got.text[:200]}"] += 1
            await _until("confctl to see the customer unheld", settled)
        await client.post(f"{sim}/simulator/calls/{call_sid}/hangup")
    return {
        "n": len(via_confctl),
        "confctl_p50": percentile(via_confctl, 50), "confctl_p99": percentile(via_confctl, 99),
        "direct_p50": percentile(direct, 50), "direct_p99": percentile(direct, 99),
        "failures": dict(failures),
    }


def measure(confctl: Proc, simulator: Proc, n: int = 200) -> dict[str, Any]:
    """PATCH hold p50/p99 through confctl and the direct simulator round trip (ms), `n` of each."""
    return asyncio.run(_measure(confctl, simulator, max(BLOCK, n)))
