"""The whole system in one test process: confctl and the Twilio simulator wired to each other over ASGI.

confctl's gateway reaches the simulator through the real twilio SDK and `HttpxTwilioHttpClient` on an
`httpx.ASGITransport`; the simulator's voice requests and callbacks reach confctl's app through another.
No network, no mocks: signatures are computed by the simulator and checked by confctl's own checker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send
from twilio.rest import Client

from confctl.adapters.twilio_gateway import SdkTwilioGateway
from confctl.adapters.twilio_http import HttpxTwilioHttpClient
from confctl.entry.app import create_app
from confctl.entry.settings import ApiKey, Settings
from confctl.simulator import Simulator, SimulatorConfig, create_simulator

ACCOUNT_SID = "AC" + "e" * 32
AUTH_TOKEN = "e2e-auth-token"
PUBLIC_URL = "http://confctl.test"
SIM_URL = "http://sim.test"
TIME_SCALE = 0.01
CONFERENCE_EVENTS = ["start", "end", "join", "leave", "mute", "hold", "modify"]
# The simulator's delivery modes (its `PUT /simulator/faults` settings): Twilio promises neither order nor
# that a callback comes after the REST answer of the request that caused it.
DELIVERY_MODES: dict[str, dict[str, object]] = {
    "in-order": {},
    "concurrent": {"callback_concurrency": 4, "callback_reorder": True, "seed": 13},
    "early": {"callback_early": True, "callback_concurrency": 4},
}

KEYS = {
    "admin": "admin-key-e2e-123456",
    "reader": "reader-key-e2e-123456",
    "controller": "controller-key-e2e-123456",
    "supervisor": "supervisor-key-e2e-123456",
}


def settings() -> Settings:
    """confctl's settings: its public URL is where the simulator sends webhooks, so signatures validate."""
    return Settings(
        database_url=None,  # the engine is given to the app
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=SIM_URL,
        public_url=PUBLIC_URL,
        # Twilio outages in these tests last a second or two: answer and retry at that scale.
        command_timeout_s=3.0,
        effect_backoff_max_s=0.5,
        api_keys=[
            ApiKey(name="admin", key=KEYS["admin"], scopes=["read", "control", "supervise"]),
            ApiKey(name="reader", key=KEYS["reader"], scopes=["read"]),
            ApiKey(name="controller", key=KEYS["controller"], scopes=["control"]),
            ApiKey(name="supervisor", key=KEYS["supervisor"], scopes=["read", "supervise"]),
        ],
    )


class LateApp:
    """An ASGI app that forwards to one set later: the simulator needs confctl's address before confctl exists."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "LateApp called before its app was set"
        await self.app(scope, receive, send)


async def _swallow_webhooks(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every webhook with 204 and keeps nothing: callbacks lost on their way to confctl."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def sdk_http(app: ASGIApp) -> HttpxTwilioHttpClient:
    """The twilio SDK's HTTP layer aimed at the simulator app."""
    return HttpxTwilioHttpClient(base_url=SIM_URL, transport=httpx.ASGITransport(app=app))


@dataclass
class Stack:
    """confctl plus the simulator; `api` is authenticated as `admin`, `sim` speaks to the simulator."""

    app: Any
    confctl: LateApp  # what the simulator's webhooks reach: `app`, unless a test swaps it
    api: httpx.AsyncClient
    sim: httpx.AsyncClient
    simulator: Simulator
    extra_clients: list[httpx.AsyncClient] = field(default_factory=list)
    delivery: dict[str, object] = field(default_factory=dict)  # kept by every `set_faults`
    engine: AsyncEngine | None = None  # confctl's database: `settle` waits for its pending effects too

    def client_for(self, key_name: str | None) -> httpx.AsyncClient:
        """Another client on confctl, with the named key (None: no key); closed with the stack."""
        headers = {} if key_name is None else {"Authorization": f"Bearer {KEYS[key_name]}"}
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC_URL, headers=headers)
        self.extra_clients.append(client)
        return client

    async def set_faults(self, **faults: object) -> None:
        """The simulator's fault injection (`rest_error_rate`, `rest_error_status`, `callback_reorder`, ...),
        on top of the stack's delivery mode."""
        response = await self.sim.put("/simulator/faults", json={**self.delivery, **faults})
        assert response.status_code == 200, response.text

    async def settle(self, *, until_quiet: bool = True) -> None:
        """Wait until neither side has work left: a callback may make confctl call the simulator again.

        `until_quiet=False` waits only for what is already on its way (requests, callbacks), not for the
        simulator's timers: for a leg left ringing on purpose.
        """
        if not until_quiet:
            delivery = self.simulator.runtime.delivery
            for _ in range(2000):
                await asyncio.sleep(0.005)
                if delivery.idle() and not await self.effects_pending():
                    return
            raise TimeoutError("callbacks still on their way after 10 s")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while True:
            await self.simulator.settle()
            await asyncio.sleep(0.005)
            # A quiet simulator is not enough: confctl may be between two effects of a plan (storing one
            # answer before sending the next request), which callbacks ahead of the answer make likelier.
            if self.simulator.runtime.idle() and not await self.effects_pending():
                return
            if loop.time() > deadline:
                raise TimeoutError("the stack kept working for 20 s of settling")

    async def effects_pending(self) -> bool:
        """Whether confctl's outbox still has effects without an outcome (to send, or being sent)."""
        if self.engine is None:
            return False
        async with self.engine.connect() as conn:
            pending = await conn.scalar(sa.text("SELECT EXISTS (SELECT 1 FROM effects WHERE outcome IS NULL)"))
        return bool(pending)

    async def inbound_call(self, from_: str = "+15551230001", to: str = "+15559990000") -> tuple[str, str]:
        """A customer calls in; returns (CallSid, conference id) once everything it caused has happened."""
        response = await self.sim.post("/simulator/calls", json={"from": from_, "to": to})
        assert response.status_code == 200, response.text
        call_sid: str = response.json()["call_sid"]
        await self.settle()
        return call_sid, f"room-{call_sid}"

    async def hang_up(self, call_sid: str) -> None:
        """That party hangs up, and everything it causes happens."""
        response = await self.sim.post(f"/simulator/calls/{call_sid}/hangup")
        assert response.status_code == 200, response.text
        await self.settle()

    async def sim_call(self, call_sid: str) -> dict[str, Any]:
        """The simulator's view of one call (its REST resource plus its conference)."""
        response = await self.sim.get(f"/simulator/calls/{call_sid}")
        assert response.status_code == 200, response.text
        call: dict[str, Any] = response.json()
        return call

    async def rest_requests(self) -> list[dict[str, Any]]:
        """Every Twilio REST request the simulator received, in order (`operation`, `form`, `status`, ...)."""
        response = await self.sim.get("/simulator/requests")
        assert response.status_code == 200, response.text
        requests: list[dict[str, Any]] = response.json()
        return requests

    async def hide_callbacks_and_hold_directly(self, conference_id: str, label: str) -> None:
        """Hold `label` on Twilio itself while its callbacks are lost: drift that only `sync` can find."""
        conference_sid = (await self.ground_truth(conference_id))["sid"]
        self.confctl.app = _swallow_webhooks
        try:
            sdk = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=sdk_http(self.simulator.app))
            await sdk.conferences(conference_sid).participants(label).update_async(hold=True)
            await self.settle()
        finally:
            self.confctl.app = self.app

    async def set_directory(self, address: str, behavior: str, after_s: float | None = None) -> None:
        """How the simulator answers when `address` is dialed."""
        body = {"behavior": behavior, "after_s": after_s}
        response = await self.sim.put(f"/simulator/directory/{address}", json=body)
        assert response.status_code == 200, response.text

    async def ground_truth(self, conference_id: str) -> dict[str, Any]:
        """The simulator's view: status and live participants with their flags."""
        response = await self.sim.get(f"/simulator/conferences/{conference_id}")
        assert response.status_code == 200, response.text
        truth: dict[str, Any] = response.json()
        return truth

    async def conference(self, conference_id: str) -> dict[str, Any]:
        """confctl's projection of the conference."""
        response = await self.api.get(f"/v1/conferences/{conference_id}")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    async def events(self, conference_id: str) -> list[dict[str, Any]]:
        response = await self.api.get(f"/v1/conferences/{conference_id}/events", params={"limit": 1000})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def sim_audibility(self, conference_id: str) -> dict[str, Any]:
        response = await self.sim.get(f"/simulator/conferences/{conference_id}/audibility")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def our_audibility(self, conference_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/conferences/{conference_id}/audibility")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def assert_audibility_agrees(self, conference_id: str) -> dict[str, Any]:
        """confctl's who-hears-whom equals the simulator's; returns it."""
        ours, truth = await self.our_audibility(conference_id), await self.sim_audibility(conference_id)
        assert normalized(ours) == normalized(truth)
        return ours

    async def assert_projection_agrees(self, conference_id: str) -> dict[str, Any]:
        """Status and the live participants' labels, muted and hold flags agree; returns confctl's view."""
        ours, truth = await self.conference(conference_id), await self.ground_truth(conference_id)
        assert ours["status"] == truth["status"]
        live = {p["label"]: (p["muted"], p["hold"]) for p in ours["participants"] if p["status"] == "joined"}
        assert live == {p["label"]: (p["muted"], p["hold"]) for p in truth["participants"]}
        return ours


def normalized(audibility: dict[str, Any]) -> dict[str, Any]:
    """Audibility with every list sorted: order carries no meaning."""
    return {
        "hears": {name: sorted(heard) for name, heard in audibility["hears"].items()},
        "music": sorted(audibility["music"]),
    }


@asynccontextmanager
async def build_stack(
    engine: AsyncEngine, *, sim_auth_token: str = AUTH_TOKEN, delivery: dict[str, object] | None = None,
    **overrides: Any
) -> AsyncIterator[Stack]:
    """confctl on `engine` and a simulator calling it; `sim_auth_token` other than confctl's forges signatures.

    `delivery` is the simulator's delivery mode (one of `DELIVERY_MODES`); `overrides` change confctl's
    settings (for example `record=True`).
    """
    confctl = LateApp()
    hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=confctl), base_url=PUBLIC_URL)
    simulator = create_simulator(
        SimulatorConfig(ACCOUNT_SID, sim_auth_token, PUBLIC_URL, time_scale=TIME_SCALE), http_client=hooks
    )
    gateway_http = sdk_http(simulator.app)
    gateway = SdkTwilioGateway(ACCOUNT_SID, AUTH_TOKEN, http_client=gateway_http)
    app = create_app(settings().model_copy(update=overrides), engine=engine, gateway=gateway)
    confctl.app = app
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL, headers=admin)
    sim = httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url=SIM_URL)
    stack = Stack(app=app, confctl=confctl, api=api, sim=sim, simulator=simulator, delivery=dict(delivery or {}),
                  engine=engine)
    try:
        if stack.delivery:
            await stack.set_faults()
        yield stack
    finally:
        await simulator.aclose()
        # confctl's background work (outbox worker, reconciler, lost-callback timers) must not outlive its test.
        await app.state.container.aclose()
        for client in (api, sim, hooks, *stack.extra_clients):
            await client.aclose()
        await gateway_http.aclose()
