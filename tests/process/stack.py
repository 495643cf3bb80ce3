"""The whole system as real parts, for tests that kill processes: wiring, API helpers, ground truth.

```
simulator process ──webhooks──> front proxy ──round-robin──> confctl serve process(es) ──> PostgreSQL
        ^                                                          │
        └──────────── twilio proxy (rules: hold, delay) <──REST────┘
```

The `front` proxy's URL is confctl's CONFCTL_PUBLIC_URL and the simulator's webhook base, so callback
signatures validate; it times every webhook answer and spreads webhooks over the serve processes as a
load balancer would. The `twilio` proxy is CONFCTL_TWILIO_API_BASE. A restarted serve process comes back
on the same port with the same environment. The simulator's control endpoints (`/simulator/...`) are read
directly: they are the ground truth of what Twilio did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.process import processes as procs
from tests.process.exchanges import HOP_BY_HOP, Exchange, Rule
from tests.process.processes import Process
from tests.process.proxy import Proxy

T = TypeVar("T")

DEADLINE_S = 10.0  # how long a test waits for the system to converge after a restart


class Final(AssertionError):
    """A failure that waiting longer cannot mend (e.g. a transfer ended in the wrong state)."""


async def eventually(check: Callable[[], Awaitable[T]], *, explain: Callable[[], Awaitable[str]] | None = None,
                     within_s: float = DEADLINE_S, interval_s: float = 0.1) -> T:
    """Call `check` until it stops raising AssertionError and return its result. After `within_s` seconds (at
    once for `Final`) its last failure is raised, followed by what `explain` says (e.g. `stack.describe`)."""
    __tracebackhide__ = True  # pytest shows the failed check's message, not this loop
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        try:
            return await check()
        except AssertionError as failure:
            if isinstance(failure, Final) or loop.time() >= deadline:
                waited = "" if isinstance(failure, Final) else f" (still so after {within_s}s)"
                detail = await explain() if explain is not None else ""
                raise AssertionError(f"{failure}{waited}{detail}") from None
        await asyncio.sleep(interval_s)


def rest_line(request: dict[str, Any]) -> str:
    """One REST request of the simulator's log, for a failure message."""
    shown = " ".join(f"{name}={request['form'][name][0]}" for name in ("Label", "Hold", "Muted", "Status")
                     if request["form"].get(name))
    return f"{request['method']} {request['operation']} {request['path'].rsplit('/', 1)[-1]} {shown} " \
           f"-> {request['status']}"


def as_sets(audibility: dict[str, Any]) -> dict[str, Any]:
    """Who hears whom with every list as a set: order carries no meaning."""
    return {"hears": {who: set(heard) for who, heard in audibility["hears"].items()},
            "music": set(audibility["music"])}


@dataclass(repr=False)
class ProcessStack:
    """The running parts of one test; `api()` talks to a serve process with a full-scope key."""

    database_url: str
    workdir: Path
    twilio: Proxy
    front: Proxy
    simulator: Process
    serves: list[Process] = field(default_factory=list)
    sim: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)
    serve_settings: dict[str, str] = field(default_factory=dict)  # CONFCTL_ settings added for every serve
    hooks: httpx.AsyncClient = field(  # webhooks sent by the test itself; serve processes die, so no keep-alive
        default_factory=lambda: httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0)))
    _apis: dict[int, httpx.AsyncClient] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<ProcessStack {', '.join(p.status() for p in [self.simulator, *self.serves])}>"

    # --- processes --------------------------------------------------------------------------------------

    @property
    def serve(self) -> Process:
        return self.serves[0]

    def new_serve(self) -> Process:
        """Another `confctl serve` on the same database and proxies (not started); the front proxy sends it
        its share of the webhooks."""
        name = f"serve-{len(self.serves) + 1}"
        env = procs.serve_env(self.database_url, self.twilio.url, self.front.url) | self.serve_settings
        process = procs.confctl_serve(name, procs.free_port(), env, self.workdir)
        self.serves.append(process)
        self.front.upstreams.append(process.url)
        return process

    async def restart(self, index: int = 0) -> None:
        """Start a killed serve process again: same port, same environment."""
        await self.serves[index].start()

    async def kill_when(self, rule: Rule, during: Awaitable[httpx.Response] | None = None, index: int = 0,
                        proxy: Proxy | None = None) -> httpx.Response | None:
        """SIGKILL serve process `index` at the moment `rule` (on `proxy`, default the twilio proxy) is reached,
        while `during` (a request to that process) runs; that request's answer, or None if it died with it."""
        task = asyncio.ensure_future(during) if during is not None else None
        try:
            await (proxy or self.twilio).wait_for(rule)
        except BaseException:
            if task is not None:
                task.cancel()
            raise
        self.serves[index].kill()
        if task is None:
            return None
        try:
            return await asyncio.wait_for(task, timeout=5)
        except httpx.TransportError:
            return None

    def api(self, index: int = 0) -> httpx.AsyncClient:
        """A client on serve process `index` (it survives restarts: no connection is kept alive)."""
        if index not in self._apis:
            self._apis[index] = httpx.AsyncClient(
                base_url=self.serves[index].url, headers={"Authorization": f"Bearer {procs.API_KEY}"},
                timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0))
        return self._apis[index]

    async def deliver(self, exchange: Exchange, index: int) -> httpx.Response:
        """Send a request the front proxy took off the wire to serve process `index` itself, byte for byte and
        with its signature: a webhook delivered again, or by another route."""
        headers = {k.decode(): v.decode() for k, v in exchange.headers if k.lower() not in HOP_BY_HOP}
        return await self.hooks.request(exchange.method, self.serves[index].url + exchange.target,
                                        content=exchange.body, headers=headers)

    # --- the simulator: drive it, read the ground truth -------------------------------------------------

    async def _sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.sim.request(method, self.simulator.url + path, **kwargs)
        assert response.status_code == 200, f"simulator {method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def inbound_call(self, from_: str = "+15551230001", to: str = "+15559990000") -> tuple[str, str]:
        """A customer calls in; (CallSid, conference id) once confctl has the customer joined."""
        call_sid: str = (await self._sim("POST", "/simulator/calls", json={"from": from_, "to": to}))["call_sid"]
        room = f"room-{call_sid}"
        await eventually(lambda: self.assert_joined(room, "customer"), explain=lambda: self.describe(room))
        return call_sid, room

    async def hang_up(self, call_sid: str) -> None:
        await self._sim("POST", f"/simulator/calls/{call_sid}/hangup")

    async def set_directory(self, address: str, behavior: str = "answer", after_s: float | None = None) -> None:
        """How the simulator's `address` answers when dialed (`after_s`: its ring, in real seconds)."""
        await self._sim("PUT", f"/simulator/directory/{address}", json={"behavior": behavior, "after_s": after_s})

    async def ground_truth(self, room: str) -> dict[str, Any]:
        truth: dict[str, Any] = await self._sim("GET", f"/simulator/conferences/{room}")
        return truth

    async def sim_audibility(self, room: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._sim("GET", f"/simulator/conferences/{room}/audibility")
        return result

    async def rest_requests(self) -> list[dict[str, Any]]:
        """Every REST request Twilio (the simulator) received, in order: the truth of what it was asked."""
        requests: list[dict[str, Any]] = await self._sim("GET", "/simulator/requests")
        return requests

    async def dials(self, label: str) -> list[dict[str, Any]]:
        """The CreateParticipant requests Twilio received for `label`."""
        return [r for r in await self.rest_requests()
                if r["operation"] == "CreateParticipant" and label in r["form"].get("Label", [])]

    async def sim_callbacks(self) -> list[dict[str, Any]]:
        """Every webhook the simulator sent, in order, with the answer it got."""
        callbacks: list[dict[str, Any]] = await self._sim("GET", "/simulator/callbacks")
        return callbacks

    # --- confctl's view ---------------------------------------------------------------------------------

    async def _get(self, path: str, index: int = 0, **params: Any) -> Any:
        response = await self.api(index).get(path, params=params)
        assert response.status_code == 200, f"confctl GET {path}: {response.status_code} {response.text}"
        return response.json()

    async def conference(self, room: str, index: int = 0) -> dict[str, Any]:
        document: dict[str, Any] = await self._get(f"/v1/conferences/{room}", index)
        return document

    async def our_audibility(self, room: str, index: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(f"/v1/conferences/{room}/audibility", index)
        return result

    async def events(self, room: str, index: int = 0) -> list[dict[str, Any]]:
        """The conference's whole history, oldest first (every page)."""
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self._get(f"/v1/conferences/{room}/events", index, after=after, limit=1000)
            items += page["items"]
            if page["next_after"] is None:
                return items
            after = page["next_after"]

    async def add_participant(self, room: str, to: str, role: str = "agent", **body: Any) -> str:
        """Dial `to` in through confctl; its label once Twilio has it joined and confctl knows."""
        response = await self.api().post(f"/v1/conferences/{room}/participants", json={"to": to, "role": role, **body})
        assert response.status_code == 202, response.text
        label: str = response.json()["label"]
        await eventually(lambda: self.assert_joined(room, label), explain=lambda: self.describe(room))
        return label

    async def assert_joined(self, room: str, label: str) -> None:
        """Both confctl and the simulator have `label` connected in the conference."""
        response = await self.api().get(f"/v1/conferences/{room}")
        assert response.status_code == 200, f"confctl has no {room} yet: {response.text}"
        ours = {p["label"]: p["status"] for p in response.json()["participants"]}
        truth = {p["label"] for p in (await self.ground_truth(room))["participants"]}
        assert ours.get(label) == "joined" and label in truth, \
            f"{label} not joined: confctl {ours}, simulator connected {sorted(truth)}"

    # --- failure messages -------------------------------------------------------------------------------

    async def describe(self, room: str) -> str:
        """Both views of the conference and what went over the wire, for an assertion message."""
        lines = ["", "--- processes:", *(f"  {p.status()}" for p in [self.simulator, *self.serves])]
        for title, section in (("confctl", self._our_lines), ("simulator (ground truth)", self._sim_lines)):
            try:
                lines += [f"--- {title}:", *(f"  {line}" for line in await section(room))]
            except (AssertionError, httpx.HTTPError) as exc:
                lines.append(f"--- {title}: unavailable ({exc})")
        lines += ["--- twilio proxy:", self.twilio.log(), "--- front proxy (webhooks):", self.front.log()]
        return "\n".join(lines)

    async def _our_lines(self, room: str) -> list[str]:
        ours = await self.conference(room)
        return [f"status {ours['status']}, version {ours['version']}",
                *(f"{p['label']}: {p['status']} hold={p['hold']} muted={p['muted']} call={p['call_sid']}"
                  for p in ours["participants"]),
                *(f"transfer {t['id']} {t['kind']} {t['state']} to {t['target_label']} ({t['failure_reason']})"
                  for t in ours["transfers"]),
                f"audibility {await self.our_audibility(room)}"]

    async def _sim_lines(self, room: str) -> list[str]:
        truth = await self.ground_truth(room)
        return [f"status {truth['status']}",
                *(f"{p['label']}: connected hold={p['hold']} muted={p['muted']} call={p['call_sid']}"
                  for p in truth["participants"]),
                *(f"{p['label']}: {p['status']} (not connected) call={p['call_sid']}" for p in truth["dialing"]),
                f"audibility {await self.sim_audibility(room)}",
                "REST requests received:", *(f"  {rest_line(r)}" for r in await self.rest_requests())]

    def tails(self) -> str:
        """The end of every process's log."""
        return "\n".join(f"--- {p.status()}\n{p.tail()}" for p in [self.simulator, *self.serves])


@asynccontextmanager
async def running_stack(database_url: str, workdir: Path, serves: int = 1,
                        serve_settings: dict[str, str] | None = None) -> AsyncIterator[ProcessStack]:
    """Proxies, the simulator and `serves` confctl serve processes (with `serve_settings` added to their
    environment), all started (and all stopped after)."""
    twilio, front = Proxy("twilio proxy"), Proxy("front proxy")
    await twilio.start()
    await front.start()
    sim_port = procs.free_port()
    twilio.upstreams.append(f"http://127.0.0.1:{sim_port}")
    stack = ProcessStack(database_url, workdir, twilio, front, procs.simulator(sim_port, front.url, workdir),
                         serve_settings=dict(serve_settings or {}))
    try:
        for _ in range(serves):
            stack.new_serve()
        await asyncio.gather(stack.simulator.start(), *(p.start() for p in stack.serves))
        yield stack
    finally:
        for process in [*stack.serves, stack.simulator]:
            process.kill()
        print(stack.tails())  # shown by pytest for a failed test only
        for client in [stack.sim, stack.hooks, *stack._apis.values()]:
            await client.aclose()
        await twilio.aclose()
        await front.aclose()


async def empty_tables(engine: AsyncEngine) -> None:
    """Every table but Alembic's emptied: effects left by earlier tests must not be run by our serve process."""
    async with engine.begin() as conn:
        names = (await conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ))).scalars().all()
        if names:
            quoted = ", ".join(f'"{name}"' for name in names)
            await conn.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
