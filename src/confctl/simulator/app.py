"""The simulator's public face: its configuration, the running `Simulator`, and `create_simulator`."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confctl.simulator import docs
from confctl.simulator.account import build_account_router
from confctl.simulator.control import build_router
from confctl.simulator.delivery import LOG_LIMIT, Delivery
from confctl.simulator.faults import Faults
from confctl.simulator.model.clock import ScaledClock
from confctl.simulator.model.world import World
from confctl.simulator.rest import router as rest
from confctl.simulator.runtime import Runtime


@dataclass
class SimulatorConfig:
    account_sid: str
    auth_token: str
    webhook_base: str  # e.g. "http://127.0.0.1:8000"; voice URL = webhook_base + "/twilio/voice"
    voice_url: str | None = None  # overrides webhook_base + "/twilio/voice"
    default_ring_s: float = 0.5  # how long a dialed address rings before answering by default
    time_scale: float = 1.0  # multiplies every simulated delay (tests use e.g. 0.01)
    api_keys: dict[str, str] = field(default_factory=dict)  # the account's API keys: SID (SK…) -> secret


class _HoldCallbacksWhileServing:
    """ASGI middleware: callbacks wait while a request is served, so the answer leaves first.

    Under the `callback_early` fault the other way round: a Twilio REST answer waits (briefly) until the
    callbacks its request caused are delivered.
    """

    def __init__(self, app: ASGIApp, delivery: Delivery) -> None:
        self.app = app
        self.delivery = delivery

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mark = self.delivery.mark()
        is_rest = str(scope["path"]).startswith(rest.PREFIX)

        async def send_after_callbacks(message: Message) -> None:
            if is_rest and message["type"] == "http.response.start":
                await self.delivery.deliver_early(mark)
            await send(message)

        self.delivery.rest_started()
        try:
            await self.app(scope, receive, send_after_callbacks)
        finally:
            self.delivery.rest_finished()


class Simulator:
    """The running simulator: model, timers and callback delivery behind one FastAPI app."""

    def __init__(self, config: SimulatorConfig, http_client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._owns_client = http_client is None
        self.http_client = http_client if http_client is not None else httpx.AsyncClient()
        self.faults = Faults()
        self.world = World(config.account_sid, ScaledClock(config.time_scale), random.Random(), config.default_ring_s)
        self.runtime = Runtime(self.world, config.auth_token, config.time_scale, self.http_client, self.faults)
        # Every REST request, oldest first (bounded like the delivery log).
        self.requests: deque[dict[str, object]] = deque(maxlen=LOG_LIMIT)
        self.app = self._build_app()

    @property
    def voice_url(self) -> str:
        return self.config.voice_url or self.config.webhook_base.rstrip("/") + "/twilio/voice"

    # The public interface fixes `settle(timeout=...)`; callers need no asyncio.timeout around it.
    async def settle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no timers, fetches or callbacks are pending (raises TimeoutError otherwise)."""
        await self.runtime.settle(timeout)

    async def aclose(self) -> None:
        await self.runtime.aclose()
        if self._owns_client:
            await self.http_client.aclose()

    def _build_app(self) -> FastAPI:
        # Swagger UI from local files (docs.py); ReDoc would need a CDN.
        app = FastAPI(
            title="confctl Twilio simulator", docs_url=None, redoc_url=None, openapi_url="/simulator/openapi.json",
            description="The simulator's control API: drive calls, set the directory and faults, read the ground "
                        "truth. Its Twilio REST API (`/2010-04-01/…`) is Twilio's own: use the twilio SDK.",
            generate_unique_id_function=docs.operation_id,
        )
        app.include_router(build_router(self))
        app.include_router(build_account_router(self))
        docs.install(app)

        async def twilio_rest(request: Request) -> Response:
            return await rest.handle(self, request)

        app.add_route(
            "/2010-04-01/{rest:path}", twilio_rest, methods=["GET", "POST", "DELETE", "PUT"], include_in_schema=False
        )
        app.add_middleware(_HoldCallbacksWhileServing, delivery=self.runtime.delivery)
        return app


def create_simulator(config: SimulatorConfig, http_client: httpx.AsyncClient | None = None) -> Simulator:
    """Build a simulator; no event loop is needed until the first request."""
    return Simulator(config, http_client)
