"""Callback and voice-URL delivery under Twilio's connection overrides (`#ct`, `#rt`, `#tt`, `#rc`, `#rp`, `#e`).

A receiver that fails its first attempts (connect refused, an HTTP status, an answer slower than the read
timeout) sits between the simulator and the recording stand-in; the simulator's delivery log counts the
attempts. Without a fragment Twilio retries once, on a failed connect only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from confctl.simulator import Simulator, SimulatorConfig, create_simulator
from confctl.simulator.overrides import ConnectionOverrides, InvalidOverrides, parse_overrides
from tests.simulator.conftest import ACCOUNT, CONFERENCE_EVENTS, HOOKS, TIME_SCALE, TOKEN, Recorder

CONFERENCE_STATUS = "/twilio/conference-status"


@dataclass
class FlakyNetwork(httpx.AsyncBaseTransport):
    """The network and server in front of the stand-in: the first requests to `path` fail as `failures` says.

    `connect`: the connection is refused. `slow`: the answer takes `slow_s`; it honours the read timeout the
    client asks for, as a real socket does. A number: that status, without reaching the stand-in.
    """

    inner: httpx.AsyncBaseTransport
    path: str = CONFERENCE_STATUS
    failures: list[str] = field(default_factory=list)
    slow_s: float = 0.3
    seen: list[httpx.Request] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != self.path:
            return await self.inner.handle_async_request(request)
        self.seen.append(request)
        failure = self.failures.pop(0) if self.failures else None
        if failure == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if failure == "slow":
            read = request.extensions.get("timeout", {}).get("read")
            if read is not None and read < self.slow_s:
                await asyncio.sleep(read)
                raise httpx.ReadTimeout("no answer within the read timeout", request=request)
            await asyncio.sleep(self.slow_s)
        elif failure is not None:
            return httpx.Response(int(failure), request=request)
        return await self.inner.handle_async_request(request)


def voice_with(fragment: str) -> Callable[[dict[str, str]], str]:
    """The voice answer, with `fragment` on the conference status callback URL."""

    def voice(params: dict[str, str]) -> str:
        url = f"{HOOKS}{CONFERENCE_STATUS}{fragment}".replace("&", "&amp;")
        return (
            f'<Response><Dial><Conference participantLabel="customer" statusCallback="{url}" '
            f'statusCallbackEvent="{CONFERENCE_EVENTS}">room-{params["CallSid"]}</Conference></Dial></Response>'
        )

    return voice


@dataclass
class Rig:
    simulator: Simulator
    recorder: Recorder
    network: FlakyNetwork

    async def inbound(self) -> None:
        """A customer calls in; everything it causes is delivered (or given up on)."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.simulator.app),
                                     base_url="http://sim.test") as client:
            response = await client.post("/simulator/calls", json={"from": "+15550001", "to": "+15559999"})
            assert response.status_code == 200
        await self.simulator.settle()

    def attempts(self, kind: str = "conference-status") -> list[dict[str, Any]]:
        """The delivery log's entries (one per attempt) of the first webhook of that kind."""
        entries = [e for e in self.simulator.runtime.delivery.log if e["kind"] == kind]
        first = entries[0]["params"] if entries else None
        return [e for e in entries if e["params"] == first]


@pytest.fixture
async def rig_for() -> AsyncIterator[Callable[..., Rig]]:
    """Builds a simulator whose webhooks cross a FlakyNetwork to a Recorder."""
    made: list[tuple[Simulator, httpx.AsyncClient]] = []

    def build(fragment: str = "", failures: list[str] | None = None, path: str = CONFERENCE_STATUS,
              voice_url: str | None = None) -> Rig:
        recorder = Recorder(voice=voice_with(fragment))
        network = FlakyNetwork(httpx.ASGITransport(app=recorder), path, list(failures or []))
        client = httpx.AsyncClient(transport=network)
        config = SimulatorConfig(ACCOUNT, TOKEN, HOOKS, voice_url=voice_url, time_scale=TIME_SCALE)
        simulator = create_simulator(config, client)
        made.append((simulator, client))
        return Rig(simulator, recorder, network)

    yield build
    for simulator, client in made:
        await simulator.aclose()
        await client.aclose()


# --- without overrides: Twilio's defaults ------------------------------------------------------------------

async def test_without_overrides_a_failed_connect_is_retried_once(rig_for: Callable[..., Rig]) -> None:
    """No fragment: a refused connection is tried again once, and the second attempt delivers the callback."""
    rig = rig_for(failures=["connect"])
    await rig.inbound()
    attempts = rig.attempts()
    assert [(a["attempt"], a["failure"], a["status"]) for a in attempts] == [(1, "ct", None), (2, None, 204)]
    assert len(rig.recorder.at(CONFERENCE_STATUS)) == 1


async def test_without_overrides_two_failed_connects_lose_the_callback(rig_for: Callable[..., Rig]) -> None:
    """No fragment: after the one retry also fails to connect, the callback is given up: two attempts."""
    rig = rig_for(failures=["connect", "connect"])
    await rig.inbound()
    assert [(a["attempt"], a["failure"], a["retried"]) for a in rig.attempts()] == [(1, "ct", True), (2, "ct", False)]
    assert rig.recorder.at(CONFERENCE_STATUS) == []


@pytest.mark.parametrize("failure", ["503", "500", "404", "slow"])
async def test_without_overrides_an_http_error_or_a_slow_answer_is_not_retried(
    rig_for: Callable[..., Rig], failure: str
) -> None:
    """No fragment: a 5xx, a 4xx or a slow answer is final: one attempt (the slow one is still delivered)."""
    rig = rig_for(failures=[failure])
    await rig.inbound()
    attempts = rig.attempts()
    assert len(attempts) == 1
    assert attempts[0]["retried"] is False
    delivered = 1 if failure == "slow" else 0  # the default read timeout is 15 s
    assert len(rig.recorder.at(CONFERENCE_STATUS)) == delivered


# --- with overrides --------------------------------------------------------------------------------------

async def test_rc_and_rp_5xx_retry_the_same_signed_request_until_it_is_answered(rig_for: Callable[..., Rig]) -> None:
    """`#rc=5&rp=ct,rt,5xx`: three 503s then success is four attempts of byte-identical signed requests."""
    rig = rig_for("#rc=5&rp=ct,rt,5xx", ["503", "503", "503"])
    await rig.inbound()
    attempts = rig.attempts()
    assert [(a["attempt"], a["status"], a["failure"]) for a in attempts] == [
        (1, 503, "5xx"), (2, 503, "5xx"), (3, 503, "5xx"), (4, 204, None)]
    assert [a["retried"] for a in attempts] == [True, True, True, False]
    sent = rig.network.seen
    assert len(sent) == 4
    assert len({(str(r.url), r.content, r.headers["x-twilio-signature"],
                 r.headers["i-twilio-idempotency-token"]) for r in sent}) == 1
    assert "#" not in str(sent[0].url)
    [delivered] = rig.recorder.hooks[1:]  # after the voice request
    assert delivered.signature_valid


async def test_rc_caps_the_retries(rig_for: Callable[..., Rig]) -> None:
    """`#rc=2&rp=5xx` against a receiver that keeps failing: three attempts, then the callback is lost."""
    rig = rig_for("#rc=2&rp=5xx", ["502"] * 5)
    await rig.inbound()
    assert [a["status"] for a in rig.attempts()] == [502, 502, 502]
    assert rig.recorder.at(CONFERENCE_STATUS) == []


@pytest.mark.parametrize(
    ("fragment", "failure", "attempts"),
    [
        ("#rc=3&rp=5xx", "404", 1),  # 4xx is not in the policy
        ("#rc=3&rp=4xx", "404", 2),
        ("#rc=3&rp=4xx", "503", 1),
        ("#rc=3&rp=all", "404", 2),
        ("#rc=3&rp=all", "connect", 2),
        ("#rc=3&rp=5xx", "connect", 1),  # naming a policy replaces the default `ct`
        ("#rc=0", "connect", 1),
        ("#rp=5xx", "503", 2),  # rc keeps its default of 1
    ],
)
async def test_the_retry_policy_decides_which_failures_are_retried(
    rig_for: Callable[..., Rig], fragment: str, failure: str, attempts: int
) -> None:
    """Only a failure named in `rp` (or `all`) is retried, at most `rc` times."""
    rig = rig_for(fragment, [failure])
    await rig.inbound()
    assert len(rig.attempts()) == attempts
    assert len(rig.recorder.at(CONFERENCE_STATUS)) == (1 if attempts == 2 else 0)


async def test_rt_cuts_a_slow_answer_and_rp_rt_retries_it(rig_for: Callable[..., Rig]) -> None:
    """`#rt=100&rp=rt&rc=2`: two answers slower than 100 ms are read timeouts, the third attempt is answered."""
    rig = rig_for("#rt=100&rp=rt&rc=2", ["slow", "slow"])
    await rig.inbound()
    attempts = rig.attempts()
    assert [(a["failure"], a["status"]) for a in attempts] == [("rt", None), ("rt", None), (None, 204)]
    assert all(a["elapsed_ms"] < 250 for a in attempts[:2])
    assert len(rig.recorder.at(CONFERENCE_STATUS)) == 1


async def test_tt_bounds_all_attempts_together(rig_for: Callable[..., Rig]) -> None:
    """`#tt=500&rt=300&rp=rt&rc=5` against an answer that takes 1 s: the budget ends the second attempt."""
    rig = rig_for("#tt=500&rt=300&rp=rt&rc=5", ["slow"] * 6)
    rig.network.slow_s = 1.0
    started = time.monotonic()
    await rig.inbound()
    attempts = rig.attempts()
    assert len(attempts) == 2
    assert attempts[-1]["retried"] is False
    assert attempts[-1]["failure"] == "tt"
    assert time.monotonic() - started < 0.9
    assert rig.recorder.at(CONFERENCE_STATUS) == []


async def test_a_list_of_edges_rotates_across_the_retries(rig_for: Callable[..., Rig]) -> None:
    """`#e=dublin,tokyo` with two retries: the attempts leave from dublin, tokyo, dublin."""
    rig = rig_for("#e=dublin,tokyo&rc=2&rp=5xx", ["500", "500"])
    await rig.inbound()
    assert [a["edge"] for a in rig.attempts()] == ["dublin", "tokyo", "dublin"]
    assert [a["edge"] for a in rig.attempts("voice")] == ["ashburn"]


@pytest.mark.parametrize(
    ("fragment", "code"),
    [("#rp=5xx,sometimes", 11243), ("#e=atlantis", 11240), ("#e=london-ix", 11242), ("#rc=6", None),
     ("#ct=50", None), ("#tt=20000", None), ("#rc=two", None), ("#retries=3", None), ("#rc=1&rc=2", None)],
)
async def test_a_fragment_twilio_refuses_means_no_request_at_all(
    rig_for: Callable[..., Rig], fragment: str, code: int | None
) -> None:
    """An invalid override (policy, edge, a value out of range, an unknown key): nothing is sent, the log says why."""
    rig = rig_for(fragment)
    await rig.inbound()
    [entry] = rig.attempts()
    assert (entry["attempt"], entry["status"], entry["error_code"]) == (0, None, code)
    assert entry["error"]
    assert rig.network.seen == []


async def test_the_fragment_is_neither_sent_nor_signed(rig_for: Callable[..., Rig]) -> None:
    """The request goes to the URL without its fragment, signed over that URL (twilio's validator agrees)."""
    rig = rig_for("#ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx")
    await rig.inbound()
    [hook] = [h for h in rig.recorder.hooks if h.path == CONFERENCE_STATUS]
    assert hook.url == f"{HOOKS}{CONFERENCE_STATUS}"
    assert hook.signature_valid
    [entry] = rig.attempts()
    assert entry["url"] == f"{HOOKS}{CONFERENCE_STATUS}"
    assert entry["fragment"] == "ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx"


async def test_the_voice_url_honours_its_overrides(rig_for: Callable[..., Rig]) -> None:
    """A voice URL with `#rc=2&rp=5xx` answered 503 once is fetched again and the caller reaches the conference."""
    rig = rig_for(failures=["503"], path="/twilio/voice", voice_url=f"{HOOKS}/twilio/voice#rc=2&rp=5xx")
    await rig.inbound()
    assert [a["status"] for a in rig.attempts("voice")] == [503, 200]
    assert len(rig.recorder.at(CONFERENCE_STATUS)) == 1  # the customer joined


async def test_without_overrides_a_voice_url_answered_503_fails_the_call(rig_for: Callable[..., Rig]) -> None:
    """The same 503 on a voice URL without a fragment is final: no conference, no callback."""
    rig = rig_for(failures=["503"], path="/twilio/voice")
    await rig.inbound()
    assert [a["status"] for a in rig.attempts("voice")] == [503]
    assert rig.recorder.at(CONFERENCE_STATUS) == []


async def test_drop_fault_loses_callbacks_but_not_voice_requests(rig_for: Callable[..., Rig]) -> None:
    """callback_drop_rate=1: no callback reaches the receiver, each is logged as dropped; the TwiML fetch goes."""
    rig = rig_for()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.simulator.app),
                                 base_url="http://sim.test") as client:
        faults = await client.put("/simulator/faults", json={"callback_drop_rate": 1, "seed": 1})
        assert faults.json()["callback_drop_rate"] == 1
    await rig.inbound()
    assert rig.recorder.at(CONFERENCE_STATUS) == []
    assert len(rig.recorder.at("/twilio/voice")) == 1
    [entry] = rig.attempts()
    assert (entry["dropped"], entry["attempt"], entry["status"]) == (True, 0, None)


# --- the fragment itself -----------------------------------------------------------------------------------

def test_parse_gives_twilios_defaults_for_what_the_fragment_leaves_out() -> None:
    """No fragment is Twilio's defaults; each key given replaces only its own default."""
    assert parse_overrides("https://x.test/a?b=1") == ConnectionOverrides(
        connect_timeout_ms=5000, read_timeout_ms=15000, total_timeout_ms=15000, retry_count=1,
        retry_policy=frozenset({"ct"}), sni=True, edges=("ashburn",))
    parsed = parse_overrides("https://x.test/a?b=1#ct=3000&rt=4000&tt=15000&rc=5&rp=ct,rt,5xx&sni=n&e=tokyo")
    assert parsed == ConnectionOverrides(3000, 4000, 15000, 5, frozenset({"ct", "rt", "5xx"}), False, ("tokyo",))
    assert parse_overrides("https://x.test/a#rc=0").retry_policy == frozenset({"ct"})


def test_all_covers_every_failure_class() -> None:
    """`rp=all` retries 4xx, 5xx, connect failures and read timeouts."""
    policy = parse_overrides("https://x.test/#rp=all")
    assert all(policy.retries_on(f) for f in ("4xx", "5xx", "ct", "rt"))
    assert not policy.retries_on("partial")


def test_an_invalid_retry_policy_is_twilio_error_11243() -> None:
    """An unknown `rp` value carries Twilio's error code."""
    with pytest.raises(InvalidOverrides) as raised:
        parse_overrides("https://x.test/#rp=ct,never")
    assert raised.value.code == 11243
