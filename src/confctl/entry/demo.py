"""`confctl demo`: drive a scripted contact-center call against a running dev stack and print who hears whom.

Inbound call → agent → hold / unhold → warm transfer → supervisor monitor → coach → barge → cold transfer →
end. Every step waits for Twilio's facts (through the simulator) to show in confctl's state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from confctl.entry.settings import Settings


class DemoError(Exception):
    """The demo could not go on (stack not running, a step timed out, an API error)."""


def dev_defaults() -> dict[str, str]:
    """What the running `confctl dev` wrote to dev.json in its data directory (URLs and a key), if anything."""
    try:
        found: dict[str, str] = json.loads((Settings().data_dir / "dev.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str)}


def _same(ours: dict[str, Any], truth: dict[str, Any]) -> bool:
    """Two Audibility answers say the same (list order means nothing)."""

    def norm(a: dict[str, Any]) -> tuple[dict[str, list[str]], list[str]]:
        return {k: sorted(v) for k, v in a.get("hears", {}).items()}, sorted(a.get("music", []))

    return norm(ours) == norm(truth)


class Demo:
    """The scripted call, step by step."""

    def __init__(self, api: httpx.AsyncClient, sim: httpx.AsyncClient, out: Callable[[str], None] = print) -> None:
        self.api = api
        self.sim = sim
        self.out = out
        self.room = ""
        self.started = time.monotonic()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.api.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise DemoError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    async def wait(self, what: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            response = await self.api.get(f"/v1/conferences/{self.room}")
            if response.status_code == 200:  # 404 until Twilio's voice request has reached confctl
                conference: dict[str, Any] = response.json()
                if ok(conference):
                    return conference
            await asyncio.sleep(0.1)
        raise DemoError(f"timed out waiting for {what}")

    def _leg(self, conference: dict[str, Any], label: str) -> dict[str, Any]:
        return next((p for p in conference["participants"] if p["label"] == label and p["status"] != "left"),
                    {"status": "absent"})

    async def settled_audibility(self) -> dict[str, Any]:
        """confctl's who-hears-whom once it agrees with the simulator's ground truth (at most 10 s).

        A command's answer is Twilio's REST answer; the callbacks of an earlier step may still be on their way
        (Twilio sends them in no promised order) and move the state once more, so a step prints the state only
        when Twilio's facts have all arrived. Past the deadline it prints what confctl says anyway."""
        deadline = time.monotonic() + 10.0
        while True:
            ours: dict[str, Any] = await self.call("GET", f"/v1/conferences/{self.room}/audibility")
            truth = await self.sim.get(f"/simulator/conferences/{self.room}/audibility")
            if truth.status_code != 200 or _same(ours, truth.json()) or time.monotonic() > deadline:
                return ours
            await asyncio.sleep(0.1)

    async def step(self, title: str) -> None:
        audibility = await self.settled_audibility()
        self.out(f"\n[{time.monotonic() - self.started:5.1f}s] {title}")
        for label, hears in sorted(audibility["hears"].items()):
            heard = ", ".join(hears) if hears else ("music" if label in audibility["music"] else "nobody")
            self.out(f"    {label:<18} hears {heard}")

    async def joined(self, label: str) -> dict[str, Any]:
        return await self.wait(f"{label} to join", lambda c: self._leg(c, label)["status"] == "joined")

    async def transfer_state(self, transfer_id: str, *states: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            transfer: dict[str, Any] = await self.call("GET", f"/v1/transfers/{transfer_id}")
            if transfer["state"] in states:
                return transfer
            await asyncio.sleep(0.1)
        raise DemoError(f"timed out waiting for transfer {transfer_id} to be {'/'.join(states)}")

    async def run(self) -> None:
        started = await self.sim.post("/simulator/calls", json={"from": "+15551230001", "to": "+15559990000"})
        if started.status_code >= 400:
            raise DemoError(f"the simulator refused the call: {started.text}")
        self.room = f"room-{started.json()['call_sid']}"
        self.out(f"Inbound call from +15551230001 → conference {self.room}")
        await self.wait("the conference", lambda c: self._leg(c, "customer")["status"] == "joined")
        await self.step("Customer waiting (wait music)")

        await self.call("POST", f"/v1/conferences/{self.room}/participants",
                        json={"to": "client:alice", "role": "agent", "label": "alice"})
        await self.joined("alice")
        await self.wait("the conference to start", lambda c: c["status"] == "in-progress")
        await self.step("Agent alice answers")

        await self.call("PATCH", f"/v1/conferences/{self.room}/participants/customer", json={"hold": True})
        await self.step("alice puts the customer on hold (music, heard by nobody)")
        await self.call("PATCH", f"/v1/conferences/{self.room}/participants/customer", json={"hold": False})
        await self.call("PATCH", f"/v1/conferences/{self.room}/participants/alice", json={"muted": True})
        await self.step("Customer back; alice muted (still hears the customer)")
        await self.call("PATCH", f"/v1/conferences/{self.room}/participants/alice", json={"muted": False})

        warm = await self.call("POST", f"/v1/conferences/{self.room}/transfers",
                               json={"kind": "warm", "from": "alice", "to": "client:bob", "label": "bob"})
        await self.transfer_state(warm["id"], "consulting")
        await self.step("Warm transfer: alice consults bob while the customer hears music")
        await self.call("POST", f"/v1/transfers/{warm['id']}/complete")
        await self.wait("alice to leave", lambda c: self._leg(c, "alice")["status"] == "absent")
        await self.step("Transfer completed: the customer is with bob")

        await self.call("POST", f"/v1/conferences/{self.room}/participants",
                        json={"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "monitor"})
        await self.joined("sue")
        await self.step("Supervisor sue monitors (hears both, heard by none)")
        await self.call("PATCH", f"/v1/conferences/{self.room}/participants/sue",
                        json={"mode": "coach", "coach": "bob"})
        await self.step("sue coaches bob (only bob hears her)")
        await self.call("PATCH", f"/v1/conferences/{self.room}/participants/sue", json={"mode": "barge"})
        await self.step("sue barges in (everyone hears everyone)")
        await self.call("DELETE", f"/v1/conferences/{self.room}/participants/sue")
        await self.wait("sue to leave", lambda c: self._leg(c, "sue")["status"] == "absent")

        cold = await self.call("POST", f"/v1/conferences/{self.room}/transfers",
                               json={"kind": "cold", "from": "bob", "to": "+15557654321", "label": "carol",
                                     "target_role": "external"})
        await self.transfer_state(cold["id"], "completed", "failed")
        await self.joined("carol")
        await self.step("Cold transfer: bob left at once; carol answered")

        await self.call("POST", f"/v1/conferences/{self.room}/end")
        await self.wait("the end", lambda c: c["status"] == "completed")
        await self.step("Conference ended")
        events = await self.call("GET", f"/v1/conferences/{self.room}/events", params={"limit": 1000})
        self.out(f"\n{len(events['items'])} events stored for {self.room}.")


async def run_demo(url: str, simulator_url: str, key: str) -> None:
    """Run the demo against the given stack."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the timeline
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as api, \
            httpx.AsyncClient(base_url=simulator_url, timeout=10) as sim:
        try:
            await api.get("/healthz")
        except httpx.TransportError as exc:
            raise DemoError(f"confctl is not reachable at {url}: start it with `confctl dev`") from exc
        await Demo(api, sim).run()
