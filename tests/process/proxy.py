"""A rule-driven HTTP/1.1 reverse proxy that runs in the test process, for the real-process tests.

It stands where the network fails. In front of the Twilio simulator it can swallow a request
(`hold_request`: Twilio never got it), let Twilio act and lose its answer (`hold_response`), or answer
late (`delay`). In front of confctl (the public URL the simulator calls) it balances webhooks over the
serve processes round-robin, times every answer, and can take callbacks off the wire (`respond`).

Every request becomes an `Exchange` in `Proxy.exchanges`, stamped when it was received, forwarded
(the upstream answered) and answered (the client got the answer). `Proxy.wait_for(rule)` returns at the
rule's moment, e.g. the instant confctl's dial reached Twilio, which is when a test SIGKILLs confctl.
Built on asyncio streams and h11 (the HTTP/1.1 state machine under httpx and uvicorn), forwarding with
httpx; no mock of either side.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import h11
import httpx

from tests.process.exchanges import HOP_BY_HOP, Action, Exchange, Headers, Rule, Stage


class Proxy:
    """A reverse proxy on 127.0.0.1 (port chosen by the OS) in front of `upstreams`, taken in turn."""

    def __init__(self, name: str, upstreams: Sequence[str] = ()) -> None:
        self.name = name
        self.upstreams = list(upstreams)
        self.rules: list[Rule] = []
        self.exchanges: list[Exchange] = []
        self._turn = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        # No keep-alive upstream: a SIGKILLed upstream must never leave a dead pooled connection behind.
        self._client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))

    @property
    def port(self) -> int:
        assert self._server is not None, f"{self.name} is not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def aclose(self) -> None:
        """Stop listening and drop every connection, held ones included."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await self._client.aclose()

    # --- rules and waiting ------------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        """Add a rule after the existing ones; returns it, to wait on and to remove."""
        self.rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        self.rules.remove(rule)

    async def wait_until(self, predicate: Callable[[Exchange], bool], what: str,
                         within_s: float = 10.0) -> Exchange:
        """The first exchange for which `predicate` holds, waiting up to `within_s` seconds for one."""
        try:
            async with asyncio.timeout(within_s), self._changed:
                while True:
                    found = next((e for e in self.exchanges if predicate(e)), None)
                    if found is not None:
                        return found
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{self.name}: no {what} within {within_s}s; it saw:\n{self.log()}") from None

    async def wait_for(self, rule: Rule, stage: Stage | None = None, within_s: float = 10.0) -> Exchange:
        """The first request `rule` applied to, once it reached `stage` (default: the rule's moment)."""
        wanted = stage or rule.moment
        return await self.wait_until(lambda e: e.rule is rule and e.reached(wanted),
                                     f"request matching [{rule}] {wanted}", within_s)

    def log(self, last: int = 25) -> str:
        """The last exchanges, one a line, for failure messages."""
        lines = [f"  {e.describe()}" for e in self.exchanges[-last:]]
        return "\n".join(lines) or "  (nothing)"

    async def _stamp(self, exchange: Exchange, stage: Stage, status: int | None = None) -> None:
        now = time.monotonic()
        if stage == "forwarded":
            exchange.forwarded_at, exchange.upstream_status = now, status
        elif stage == "answered":
            exchange.answered_at, exchange.status = now, status
        async with self._changed:
            self._changed.notify_all()

    # --- HTTP -------------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                exchange = await self._read(conn, reader)
                if exchange is None:
                    return
                answer = await self._handle(exchange)
                if answer is None:  # held: the connection stays open until the client gives up
                    while await reader.read(65536):
                        pass
                    return
                status, headers, body = answer
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                if body:
                    writer.write(conn.send(h11.Data(data=body)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                await self._stamp(exchange, "answered", status)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return  # the client went away (a SIGKILLed confctl) or spoke nonsense: drop the connection
        except asyncio.CancelledError:
            return  # `aclose`: nobody awaits this task but the proxy itself
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Exchange | None:
        """The next whole request on this connection, or None once the client closed it."""
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return Exchange(method=request.method.decode(), target=request.target.decode("latin-1"),
                                headers=list(request.headers), body=bytes(body), received_at=time.monotonic())
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _handle(self, exchange: Exchange) -> tuple[int, Headers, bytes] | None:
        """Apply the first matching rule; None when no answer is to be given."""
        rule = next((r for r in self.rules if r.matches(exchange)), None)
        exchange.rule = rule
        if rule is not None:
            rule.hits.append(exchange)  # before any await: `times` must hold under concurrency
        self.exchanges.append(exchange)
        await self._stamp(exchange, "received")
        action = rule.action if rule is not None else Action.PASS
        if action is Action.HOLD_REQUEST:
            return None
        if action is Action.RESPOND:
            assert rule is not None
            return rule.status, [(b"content-length", b"0")], b""
        if action is Action.DELAY:
            assert rule is not None
            await asyncio.sleep(rule.delay_s)
        status, headers, body = await self._forward(exchange)
        await self._stamp(exchange, "forwarded", status)
        if action is Action.LOSE_ANSWER:
            assert rule is not None
            return rule.status, [(b"content-length", b"0")], b""
        return None if action is Action.HOLD_RESPONSE else (status, headers, body)

    async def _forward(self, exchange: Exchange) -> tuple[int, Headers, bytes]:
        if not self.upstreams:
            return self._bad_gateway("no upstream configured")
        upstream = self.upstreams[self._turn % len(self.upstreams)]
        self._turn += 1
        exchange.upstream = upstream
        headers = [(k, v) for k, v in exchange.headers if k.lower() not in HOP_BY_HOP]
        try:
            response = await self._client.request(exchange.method, upstream + exchange.target, headers=headers,
                                                  content=exchange.body)
        except httpx.HTTPError as exc:
            return self._bad_gateway(f"{upstream} failed: {exc!r}")
        out = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
        return response.status_code, [*out, (b"content-length", str(len(response.content)).encode())], \
            response.content

    def _bad_gateway(self, why: str) -> tuple[int, Headers, bytes]:
        body = f"{self.name}: {why}".encode()
        return 502, [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())], body
