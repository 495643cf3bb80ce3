"""The wallboard at /wallboard in a real browser (Debian's chromium), and its numbers on /metrics.

A scripted run of several calls (three customers call in, two agents answer, a customer is put on hold, a warm
transfer is consulted and completed, a supervisor listens, a customer hangs up): after each step the page's
counts, and the `confctl_wallboard_*` gauges, are what `/v1/conferences` says, with no reload of the page.
Screenshots at 1920x1080 (light and dark) and 1280x800 are kept under test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.browser.support import (
    NETWORK_LOG,
    call_with_alice,
    lose_a_re_read,
    mint,
    patch,
    post,
    sign_in,
    signed_out,
    watch,
)
from tests.browser.wire import Wire
from tests.e2e.support import KEYS, Stack
from tests.support.metrics import scrape, value

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NAMES = ["live", "waiting", "on_hold", "in_transfer", "transfers_completed", "transfers_failed", "supervisors"]
Step = Callable[[], Awaitable[None]]


async def expected(stack: Stack) -> dict[str, Any]:
    """The counts as `/v1/conferences` (and each held customer's timeline) says them now."""
    docs: list[dict[str, Any]] = []
    for status in ("init", "in-progress", "completed"):
        docs += (await stack.api.get("/v1/conferences", params={"status": status, "limit": 200})).json()["items"]
    live = [d for d in docs if d["status"] != "completed"]

    def joined(doc: dict[str, Any], role: str) -> list[dict[str, Any]]:
        return [p for p in doc["participants"] if p["role"] == role and p["status"] == "joined"]

    counts: dict[str, Any] = {
        "live": len(live),
        "waiting": sum(not c["hold"] for d in live if not joined(d, "agent") and not joined(d, "external")
                       for c in joined(d, "customer")),
        "on_hold": sum(c["hold"] for d in live for c in joined(d, "customer")),
        "in_transfer": sum(any(t["state"] in ("dialing", "consulting") for t in d["transfers"]) for d in live),
        "transfers_completed": sum(t["state"] == "completed" for d in docs for t in d["transfers"]),
        "transfers_failed": sum(t["state"] == "failed" for d in docs for t in d["transfers"]),
        "supervisors": sum(len(joined(d, "supervisor")) for d in live),
    }
    starts = []
    for doc in live:
        held = {c["label"] for c in joined(doc, "customer") if c["hold"]}
        if held:
            line = (await stack.api.get(f"/v1/conferences/{doc['id']}/timeline")).json()
            starts += [datetime.fromisoformat(i["from"]) for p in line["participants"] if p["label"] in held
                       for i in p["intervals"] if i["kind"] == "hold" and i["to"] is None]
    counts["longest_hold"] = max(((datetime.now(UTC) - s).total_seconds() for s in starts), default=0.0)
    return counts


def script(stack: Stack) -> list[tuple[str, Step, dict[str, int]]]:
    """The scripted run: each step, and the counts it must leave (checked against /v1/conferences too)."""
    calls: list[tuple[str, str]] = []
    transfer: dict[str, str] = {}

    async def three_calls() -> None:
        for n in range(3):
            calls.append(await stack.inbound_call(from_=f"+1555123000{n}"))

    async def two_agents() -> None:
        for (_, room), agent in zip(calls, ("alice", "bob"), strict=False):
            await post(stack, f"/v1/conferences/{room}/participants", {"to": f"client:{agent}", "role": "agent",
                                                                       "label": agent})

    async def hold() -> None:
        await patch(stack, calls[1][1], "customer", {"hold": True})

    async def consult() -> None:
        started = await post(stack, f"/v1/conferences/{calls[0][1]}/transfers",
                             {"kind": "warm", "from": "alice", "to": "client:carol", "label": "carol"})
        transfer["id"] = started["id"]

    async def complete() -> None:
        await post(stack, f"/v1/transfers/{transfer['id']}/complete", status=200)

    async def supervisor() -> None:
        await post(stack, f"/v1/conferences/{calls[1][1]}/participants",
                   {"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "monitor"})

    async def hang_up() -> None:
        await stack.hang_up(calls[2][0])

    zero = dict.fromkeys(NAMES, 0)
    return [
        ("three customers call in", three_calls, {**zero, "live": 3, "waiting": 3}),
        ("alice and bob answer two", two_agents, {**zero, "live": 3, "waiting": 1}),
        ("bob's customer on hold", hold, {**zero, "live": 3, "waiting": 1, "on_hold": 1}),
        ("alice consults carol", consult, {**zero, "live": 3, "waiting": 1, "on_hold": 2, "in_transfer": 1}),
        ("the transfer completes", complete, {**zero, "live": 3, "waiting": 1, "on_hold": 1,
                                              "transfers_completed": 1}),
        ("sue monitors bob", supervisor, {**zero, "live": 3, "waiting": 1, "on_hold": 1, "transfers_completed": 1,
                                          "supervisors": 1}),
        ("the waiting customer hangs up", hang_up, {**zero, "live": 2, "on_hold": 1, "transfers_completed": 1,
                                                    "supervisors": 1}),
    ]


async def check_against_api(stack: Stack, name: str, wanted: dict[str, int]) -> dict[str, Any]:
    """/v1/conferences says what the script means (else the comparison below proves nothing)."""
    truth = await expected(stack)
    assert {k: truth[k] for k in NAMES} == wanted, name
    return truth


async def test_wallboard_counts_follow_a_scripted_run_live(browser: Any, served: tuple[Stack, str]) -> None:
    """The page, signed in with a browser token in its URL fragment, shows after each step of the script the
    counts /v1/conferences says (updated from the stream, no reload), with no console error."""
    stack, api = served
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    problems = watch(page)
    try:
        await sign_in(page, api, "wallboard", await mint(api, ("read",)))
        assert "token" not in page.url, "the token leaves the address bar at once"
        assert not await page.is_visible("#signin"), "signed in: no sign-in form"
        assert await page.evaluate("sessionStorage.length") == 1
        for name, step, wanted in script(stack):
            await step()
            truth = await check_against_api(stack, name, wanted)
            shown = {k: str(v) for k, v in wanted.items()}
            try:
                await page.wait_for_function(
                    "(want) => Object.entries(want).every(([k, v]) =>"
                    " document.querySelector(`[data-count=\"${k}\"]`).textContent === v)", arg=shown, timeout=5000)
            except Exception:
                seen = await page.evaluate("window.wallboard.counts")
                raise AssertionError(f"{name}: the page shows {seen}, /v1/conferences says {wanted}") from None
            held = int(await page.evaluate("document.querySelector('[data-count=longest_hold]').dataset.seconds"))
            assert abs(held - truth["longest_hold"]) <= 2, (name, held, truth["longest_hold"])
        await page.wait_for_timeout(2100)
        assert int(await page.evaluate("document.querySelector('[data-count=longest_hold]').dataset.seconds")) \
            >= held + 1, "the longest hold ticks"
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "wallboard-1920x1080.png"))
        await page.set_viewport_size({"width": 1280, "height": 800})
        await page.screenshot(path=str(ARTIFACTS / "wallboard-1280x800.png"))
        await page.emulate_media(color_scheme="dark")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.screenshot(path=str(ARTIFACTS / "wallboard-1920x1080-dark.png"))
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(14, 17, 22)", "dark when the screen prefers it"
        labels = await page.evaluate("[...document.querySelectorAll('output[data-count]')].map(o =>"
                                     " document.getElementById(o.getAttribute('aria-labelledby')).textContent)")
        assert len(labels) == 8 and all(labels), labels
    finally:
        await page.close()
    assert problems == [], problems


async def test_wallboard_asks_for_a_token_and_refuses_an_api_key(browser: Any, served: tuple[Stack, str]) -> None:
    """Without a token the page shows its sign-in form; an API key pasted there is refused by the stream (401),
    the page asks again and keeps nothing in sessionStorage."""
    _, api = served
    page = await browser.new_page()
    try:
        await signed_out(page, api, "wallboard")
        await page.fill("#token", KEYS["reader"])
        await page.click("#signin button")
        await page.wait_for_function("document.querySelector('#status').dataset.state === 'signed-out'"
                                     " && !document.querySelector('#signin').hidden", timeout=5000)
        assert await page.evaluate("sessionStorage.length") == 0
    finally:
        await page.close()


async def test_wallboard_reads_again_a_conference_whose_re_read_the_network_lost(
        browser: Any, served: tuple[Stack, str]) -> None:
    """An event arrives on the stream but the network loses the wallboard's re-read of its conference (the
    requests for it are reset, the stream goes on): once they get through again the page reads it again and
    counts the change, though no further event comes, and its status is live again."""
    stack, api = served
    _, room = await call_with_alice(stack)
    wire = await Wire(api).start()
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch(page, ignore=NETWORK_LOG)  # the loads the test cuts
    try:
        await sign_in(page, wire.url, "wallboard", await mint(api, ("read",)))
        await page.wait_for_function("document.querySelector('[data-count=live]').textContent === '1'",
                                     timeout=5000)
        await lose_a_re_read(page, wire, stack, room)
        assert await page.inner_text("[data-count=on_hold]") == "0", "its re-read was lost"
        wire.block()
        await page.wait_for_function("document.querySelector('[data-count=on_hold]').textContent === '1'"
                                     " && document.querySelector('#status').dataset.state === 'live'", timeout=5000)
    finally:
        await page.close()
        await wire.aclose()
    assert problems == [], problems


async def test_metrics_show_the_wallboard_numbers(served: tuple[Stack, str]) -> None:
    """After each step of the script, the confctl_wallboard_* gauges on /metrics are the counts
    /v1/conferences says."""
    stack, _ = served
    for name, step, wanted in script(stack):
        await step()
        truth = await check_against_api(stack, name, wanted)
        samples = await scrape(stack.api)
        gauges = {
            "live": value(samples, "confctl_wallboard_conferences_live"),
            "waiting": value(samples, "confctl_wallboard_customers", state="waiting"),
            "on_hold": value(samples, "confctl_wallboard_customers", state="on_hold"),
            "in_transfer": value(samples, "confctl_wallboard_customers", state="in_transfer"),
            "transfers_completed": value(samples, "confctl_wallboard_transfers_today", outcome="completed"),
            "transfers_failed": value(samples, "confctl_wallboard_transfers_today", outcome="failed"),
            "supervisors": value(samples, "confctl_wallboard_supervisors_listening"),
        }
        assert gauges == wanted, name
        longest = value(samples, "confctl_wallboard_longest_hold_seconds")
        assert abs(longest - truth["longest_hold"]) <= 1, (name, longest, truth["longest_hold"])
        assert (longest > 0) == (wanted["on_hold"] > 0), name
