"""The supervisor console at /console in a real browser (Debian's chromium), against confctl and the simulator.

Every page is loaded through `Wire`, a TCP forwarder in the test (tests/browser/wire.py): it reads the heads of
the browser's requests (the stream's `Last-Event-ID`, each action's `Idempotency-Key`), can drop the network, and
can hold back the event stream, so that "never assumes success before the event arrives" is checked with the
event really late rather than by racing it. Ground truth is the simulator's (`Stack.ground_truth`): what
Twilio would say, not what confctl or the page believe.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.support import (
    NETWORK_LOG,
    WAIT_MS,
    add,
    call_with_alice,
    lose_a_re_read,
    mint,
    patch,
    serve,
    sign_in,
    until,
)
from tests.browser.wire import Head, Wire
from tests.e2e.support import Stack

# What chromium itself logs for an answer other than 2xx (the page asked, confctl refused: expected in the
# refusal tests); NETWORK_LOG is what it logs for a connection the network broke (while the wire is severed).
REFUSED_LOG = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})\b")
# Every action request the console sent in this module, across the tests: (test, method, target, key).
SENT: list[tuple[str, str, str, str | None]] = []


@dataclass
class Console:
    """confctl (and the simulator) on a real port, the wire in front of it, and a page on the console."""

    stack: Stack
    api: str  # confctl itself
    wire: Wire  # what the browser talks to
    token: str
    page: Any = None
    problems: list[str] = field(default_factory=list)
    refusals: list[int] = field(default_factory=list)  # statuses chromium logged as failed loads
    network_errors: list[str] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)  # playwright Requests that are not GETs

    async def open(self, browser: Any, test: str) -> Any:
        """A page on /console signed in with the token in its fragment, once its first state is in."""
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        self.page = page

        def on_console(message: Any) -> None:
            if message.type not in ("error", "warning"):
                return
            if (refused := REFUSED_LOG.match(message.text)) is not None:
                self.refusals.append(int(refused[1]))
            elif NETWORK_LOG.search(message.text) is not None:
                self.network_errors.append(message.text)
            else:
                self.problems.append(f"{message.type}: {message.text}")

        def on_request(request: Any) -> None:
            if request.method != "GET":
                self.requests.append(request)
                SENT.append((test, request.method, urlsplit(request.url).path,
                             request.headers.get("idempotency-key")))

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on("request", on_request)
        await sign_in(page, self.wire.url, "console", self.token)
        assert "token" not in page.url, "the token leaves the address bar at once"
        return page

    async def live(self) -> None:
        await self.page.wait_for_function(
            "window.confctlConsole?.ready && document.querySelector('#status').dataset.state === 'live'",
            timeout=WAIT_MS)

    async def close(self) -> None:
        if self.page is not None:
            await self.page.close()

    # --- the list ---------------------------------------------------------------------------------------

    def row(self, room: str) -> str:
        return f'#conferences tr[data-conference="{room}"]'

    async def cell(self, room: str, column: str) -> str:
        text: str = await self.page.locator(f'{self.row(room)} [data-col="{column}"]').inner_text()
        return text.strip()

    async def wait_cell(self, room: str, column: str, predicate: str) -> str:
        """Wait until the row's cell text satisfies the JS `predicate` (a function of the text)."""
        selector = f'{self.row(room)} [data-col="{column}"]'
        try:
            await self.page.wait_for_function(
                f"([s]) => {{ const c = document.querySelector(s);"
                f" return !!c && ({predicate})(c.textContent.trim()); }}",
                arg=[selector], timeout=WAIT_MS)
        except Exception:
            shown = await self.page.locator(selector).all_inner_texts()
            raise AssertionError(f"{room} {column}: the list shows {shown}, wanted {predicate}") from None
        return await self.cell(room, column)

    # --- one conference -----------------------------------------------------------------------------------

    async def open_detail(self, room: str) -> None:
        """Open the conference from its row's link (a click, as a person would)."""
        await self.page.click(f'{self.row(room)} a[href="#/conferences/{room}"]')
        await self.page.wait_for_selector(f'#detail[data-conference="{room}"] #participants', timeout=WAIT_MS)

    def participant(self, label: str) -> str:
        return f'#participants tr[data-participant="{label}"]'

    def button(self, label: str, action: str) -> str:
        return f'{self.participant(label)} button[data-action="{action}"]'

    async def participant_cell(self, label: str, column: str) -> str:
        text: str = await self.page.locator(f'{self.participant(label)} [data-col="{column}"]').inner_text()
        return text.strip()

    async def edge(self, listener: str, speaker: str) -> int:
        count: int = await self.page.locator(
            f'#hears g.edge[data-listener="{listener}"][data-speaker="{speaker}"]').count()
        return count

    async def wait_edge(self, listener: str, speaker: str, present: bool) -> None:
        selector = f'#hears g.edge[data-listener="{listener}"][data-speaker="{speaker}"]'
        try:
            await self.page.wait_for_selector(selector, state="attached" if present else "detached",
                                              timeout=WAIT_MS)
        except Exception:
            edges = await self.page.evaluate(
                "[...document.querySelectorAll('#hears g.edge')].map(g => g.dataset.listener + '<-' +"
                " g.dataset.speaker)")
            raise AssertionError(f"wanted {listener} hears {speaker} = {present}; drawn: {edges}") from None

    async def feedback(self) -> dict[str, str]:
        shown: dict[str, str] = await self.page.evaluate(
            "(() => { const f = document.querySelector('#feedback');"
            " return {state: f.dataset.state || '', code: f.dataset.code || '', text: f.textContent}; })()")
        return shown

    async def wait_feedback(self, state: str) -> None:
        try:
            await self.page.wait_for_function("(s) => document.querySelector('#feedback').dataset.state === s",
                                              arg=state, timeout=WAIT_MS)
        except Exception:
            raise AssertionError(f"#feedback shows {await self.feedback()}, wanted {state}") from None

    async def watch_feedback(self) -> None:
        """Record every data-state #feedback takes from now on (window.feedbackStates)."""
        await self.page.evaluate("""() => {
          window.feedbackStates = [];
          const note = (records) => {
            for (const r of records) if (r.target.id === 'feedback') window.feedbackStates.push(r.target.dataset.state);
          };
          new MutationObserver(note).observe(document.body, {subtree: true, attributes: true,
                                                             attributeFilter: ['data-state']});
        }""")

    def actions(self) -> list[Head]:
        return self.wire.actions()

    def assert_clean(self, refused: list[int] | None = None, network: bool = False) -> None:
        """No console error or warning but chromium's own logs of what a test caused on purpose: the refusals
        (their statuses) and, with `network`, the loads a broken connection cut short."""
        assert self.problems == [], self.problems
        assert sorted(self.refusals) == sorted(refused or []), self.refusals
        assert network or self.network_errors == [], self.network_errors


@pytest.fixture
async def console(engine: AsyncEngine) -> AsyncIterator[Console]:
    """confctl (with the simulator behind it) on a real port, the wire in front of it, and a browser token."""
    async with serve(engine) as (stack, api):
        wire = await Wire(api).start()
        try:
            yield Console(stack, api, wire, await mint(api))
        finally:
            await wire.aclose()


# --- scripted calls and ground truth ------------------------------------------------------------------------


async def truth_of(stack: Stack, room: str, label: str) -> dict[str, Any] | None:
    """The simulator's connected leg `label`, or None."""
    truth = await stack.ground_truth(room)
    return next((p for p in truth["participants"] if p["label"] == label), None)


async def held_on_twilio(stack: Stack, room: str, label: str, hold: bool) -> None:
    async def check() -> bool:
        leg = await truth_of(stack, room, label)
        return leg is not None and leg["hold"] is hold

    await until(check, f"{label} hold={hold} on the simulator")
    await stack.settle()


def seconds(text: str) -> int:
    """`m:ss` (or `h:mm:ss`) as seconds."""
    assert re.fullmatch(r"\d+(:\d\d){1,2}", text), f"not a duration: {text!r}"
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


def assert_keys_unique() -> None:
    """Every action sent so far in the module carried an Idempotency-Key, no two the same."""
    missing = [s for s in SENT if not s[3]]
    assert missing == [], f"actions without an Idempotency-Key: {missing}"
    keys = [s[3] for s in SENT]
    assert len(keys) == len(set(keys)), f"an Idempotency-Key reused across actions: {SENT}"


def stream_after(head: Head) -> int | None:
    values = parse_qs(urlsplit(head.target).query).get("after")
    return int(values[0]) if values else None


async def refusal(console: Console, act: Callable[[], Awaitable[None]], status: int, code: str) -> str:
    """Run `act` (a click or a submit in the page) and check the refusal it meets: its problem JSON's code and
    detail are shown in #feedback. Returns the detail."""
    page = console.page
    async with page.expect_response(lambda r: r.request.method != "GET") as answered:
        await act()
    response = await answered.value
    problem = await response.json()
    assert (response.status, problem["code"]) == (status, code), problem
    assert response.request.headers.get("idempotency-key")
    try:
        await page.wait_for_function(
            "(code) => { const f = document.querySelector('#feedback');"
            " return f.dataset.state === 'refused' && f.dataset.code === code; }", arg=code, timeout=WAIT_MS)
    except Exception:
        raise AssertionError(f"#feedback shows {await console.feedback()}, wanted refused {code}") from None
    shown = await console.feedback()
    assert problem["detail"] and problem["detail"] in shown["text"], (problem["detail"], shown)
    detail: str = problem["detail"]
    return detail


async def agrees_with_api(console: Console, room: str) -> None:
    """The page shows the conference's latest version, with each participant's hold and mute as the API says."""
    doc = await console.stack.conference(room)
    page = console.page
    try:
        await page.wait_for_function("(v) => window.confctlConsole.version === v", arg=doc["version"],
                                     timeout=WAIT_MS)
    except Exception:
        shown = await page.evaluate("window.confctlConsole.version")
        raise AssertionError(f"the page shows version {shown}, the API {doc['version']}") from None
    for p in doc["participants"]:
        held = await console.participant_cell(p["label"], "hold") != ""
        muted = await console.participant_cell(p["label"], "muted") != ""
        assert (held, muted) == (p["hold"], p["muted"]), (p["label"], held, muted, p)


async def drawing(console: Console) -> list[str]:
    """The edges drawn, as "listener<-speaker:kind", sorted."""
    edges: list[str] = await console.page.evaluate(
        "[...document.querySelectorAll('#hears g.edge')].map(g =>"
        " `${g.dataset.listener}<-${g.dataset.speaker}:${g.dataset.kind}`).sort()")
    return edges


async def absent(stack: Stack, room: str, label: str) -> bool:
    return await truth_of(stack, room, label) is None


async def completed(stack: Stack, room: str) -> bool:
    return bool((await stack.ground_truth(room))["status"] == "completed")


async def leg_is(stack: Stack, room: str, label: str, name: str, value: object) -> bool:
    leg = await truth_of(stack, room, label)
    return leg is not None and leg[name] == value


# --- the tests -------------------------------------------------------------------------------------------


async def test_a_call_appears_changes_and_leaves_the_list_live(browser: Any, console: Console) -> None:
    """A call started on the simulator appears in the list with its status and customer, an agent added through
    the API shows in its agents, a hold ticks in its hold time, and the hung-up call leaves the live list (it
    is listed again with #show-ended), all without a reload."""
    stack = console.stack
    try:
        page = await console.open(browser, "list")
        await page.evaluate("window.notReloaded = true")
        assert await page.locator("#conferences tr[data-conference]").count() == 0
        call_sid, room = await stack.inbound_call(from_="+15551230007")
        # Alone with the wait music, the customer's conference has not started: the list says what the API does.
        assert (await stack.conference(room))["status"] == "init"
        await page.wait_for_selector(f'{console.row(room)}[data-status="init"]', timeout=WAIT_MS)
        assert await console.cell(room, "status"), "the status is shown"
        assert "+15551230007" in await console.cell(room, "customer")
        assert await console.cell(room, "agents") == ""
        assert await console.cell(room, "hold") == ""

        await add(stack, room, {"to": "client:alice", "role": "agent", "label": "alice"})
        await console.wait_cell(room, "agents", "(t) => t.includes('alice')")
        assert (await stack.conference(room))["status"] == "in-progress"
        await page.wait_for_selector(f'{console.row(room)}[data-status="in-progress"]', timeout=WAIT_MS)

        await patch(stack, room, "customer", {"hold": True})
        first = seconds(await console.wait_cell(room, "hold", "(t) => /^\\d+:\\d\\d$/.test(t)"))
        # It ticks: it passes first + 2 (within 5 s, whatever the machine's load does to the page's timer).
        later = seconds(await console.wait_cell(room, "hold", f"(t) => /^\\d+:\\d\\d$/.test(t) &&"
                                                f" t.split(':')[0] * 60 + +t.split(':')[1] >= {first + 2}"))
        assert later >= first + 2

        await patch(stack, room, "customer", {"hold": False})
        await console.wait_cell(room, "hold", "(t) => t === ''")

        await stack.hang_up(call_sid)
        await page.wait_for_selector(console.row(room), state="hidden", timeout=WAIT_MS)
        await page.check("#show-ended")
        await page.wait_for_selector(f'{console.row(room)}[data-status="completed"]', state="visible",
                                     timeout=WAIT_MS)
        assert "+15551230007" in await console.cell(room, "customer")
        assert await page.evaluate("window.notReloaded === true"), "no reload"
    finally:
        await console.close()
    console.assert_clean()
    assert_keys_unique()


async def test_the_list_resumes_after_a_network_drop_with_last_event_id(browser: Any, console: Console) -> None:
    """When the network drops (every connection reset, new ones refused for a while) and events happen meanwhile,
    the page shows them once the network is back, without a reload: its EventSource reconnected with a
    Last-Event-ID equal to the last id it had received, and got exactly the events after it."""
    stack, wire = console.stack, console.wire
    try:
        _, room = await stack.inbound_call(from_="+15551230001")
        page = await console.open(browser, "drop")
        await page.evaluate("window.notReloaded = true")
        await page.wait_for_selector(console.row(room), timeout=WAIT_MS)
        # An event after the page loaded, so that its stream has delivered an id.
        await add(stack, room, {"to": "client:alice", "role": "agent", "label": "alice"})
        await console.wait_cell(room, "agents", "(t) => t.includes('alice')")
        last = wire.stream_ids[-1]
        assert last == max(e["position"] for e in await stack.events(room)), "the page has every event so far"
        before = len(wire.streams())
        assert before == 1, [h.target for h in wire.streams()]

        wire.sever()
        await page.wait_for_function("document.querySelector('#status').dataset.state === 'error'",
                                     timeout=WAIT_MS)
        _, room_b = await stack.inbound_call(from_="+15551230002")
        await patch(stack, room, "customer", {"hold": True})

        async def refused() -> bool:
            return wire.refused >= 1

        await until(refused, "the browser tried to reconnect meanwhile")
        assert await page.locator(console.row(room_b)).count() == 0, "nothing arrives while the network is down"
        assert await console.cell(room, "hold") == ""

        wire.restore()
        await page.wait_for_selector(console.row(room_b), timeout=10_000)
        await console.wait_cell(room_b, "customer", "(t) => t.includes('+15551230002')")
        await console.wait_cell(room, "hold", "(t) => /^\\d+:\\d\\d$/.test(t)")
        await console.live()
        assert await page.evaluate("window.notReloaded === true"), "no reload"
    finally:
        await console.close()
    resumed = wire.streams()[before:]
    assert resumed, "the page opened its stream again"
    assert resumed[0].headers.get("last-event-id") == str(last), \
        f"the reconnect resumes from the last id the page had ({last}): {resumed[0].headers}"
    for head in resumed:
        # Never from the start of the log: a Last-Event-ID (or an after=) past what the page already had.
        resume_from = int(head.headers.get("last-event-id") or stream_after(head) or 0)
        assert resume_from >= last, head
    after = [i for i in wire.stream_ids if i > last]
    stored = sorted(e["position"] for e in [*await stack.events(room), *await stack.events(room_b)]
                    if e["position"] > last)
    assert after == stored, "after the drop, exactly the events it missed and the new ones, each once, in order"
    console.assert_clean(network=True)
    assert console.network_errors, "chromium saw the network drop (else the test dropped nothing)"
    assert_keys_unique()


async def test_a_re_read_the_network_lost_is_read_again(browser: Any, console: Console) -> None:
    """An event arrives on the stream but the network loses the page's re-read of its conference: once the
    network is back the page reads it again and shows the change, though no further event comes."""
    stack, wire = console.stack, console.wire
    try:
        _, room = await call_with_alice(stack)
        page = await console.open(browser, "re-read")
        await page.wait_for_selector(f'{console.row(room)}[data-status="in-progress"]', timeout=WAIT_MS)
        await lose_a_re_read(page, wire, stack, room)
        wire.block()
        await console.wait_cell(room, "hold", "(t) => /^\\d+:\\d\\d$/.test(t)")
        await console.live()
    finally:
        await console.close()
    console.assert_clean(network=True)
    assert_keys_unique()


async def test_a_hold_clicked_in_the_console_reaches_twilio_and_shows_only_from_the_event(
        browser: Any, console: Console) -> None:
    """Hold clicked on the customer's row holds the customer on the simulator; while the event is late (the
    stream held back by the wire) the page shows the request pending and the row and drawing unchanged; once
    the event arrives the drawing has the customer on music and alice no longer hearing them, the feedback is
    done, and the page's state is the API's. Unhold reverses it."""
    stack, wire = console.stack, console.wire
    try:
        _, room = await call_with_alice(stack)
        page = await console.open(browser, "hold")
        await console.open_detail(room)
        await console.wait_edge("alice", "customer", present=True)
        await console.wait_edge("customer", "alice", present=True)
        assert await console.edge("customer", "music") == 0
        version = (await stack.conference(room))["version"]
        await page.wait_for_function("(v) => window.confctlConsole.version === v", arg=version, timeout=WAIT_MS)
        await console.watch_feedback()

        wire.pause_streams()
        async with page.expect_response(lambda r: r.request.method == "PATCH") as answered:
            await page.click(console.button("customer", "hold"))
        response = await answered.value
        assert response.status == 200, await response.text()
        assert response.request.headers.get("idempotency-key"), "the hold carries an Idempotency-Key"
        await held_on_twilio(stack, room, "customer", True)
        await page.wait_for_timeout(300)  # the page has its answer; the event is still held back
        shown = await console.feedback()
        assert shown["state"] == "pending", shown
        assert await console.participant_cell("customer", "hold") == "", "the row does not flip on the answer"
        assert await console.edge("alice", "customer") == 1, "nor does the drawing"
        assert await page.evaluate("window.confctlConsole.version") == version
        button = page.locator(console.button("customer", "hold"))
        assert await button.get_attribute("aria-busy") == "true" and await button.is_disabled()

        wire.resume_streams()
        await console.wait_edge("customer", "music", present=True)
        await console.wait_edge("alice", "customer", present=False)
        await console.wait_feedback("done")
        states = await page.evaluate("window.feedbackStates")
        assert states[:1] == ["pending"] and states[-1] == "done", states
        await agrees_with_api(console, room)

        await page.click(console.button("customer", "unhold"))
        await held_on_twilio(stack, room, "customer", False)
        await console.wait_edge("customer", "music", present=False)
        await console.wait_edge("alice", "customer", present=True)
        await agrees_with_api(console, room)
    finally:
        await console.close()
    assert [h.method for h in console.actions()] == ["PATCH", "PATCH"]
    console.assert_clean()
    assert_keys_unique()


async def test_refusals_show_the_problem_detail_and_change_nothing(browser: Any, console: Console) -> None:
    """Actions confctl refuses (coaching a held agent: 409 coach_target_on_hold; adding an invalid address: 422
    invalid_address; a second transfer while one rings: 409 transfer_in_progress) show #feedback refused with
    the problem's code and detail, and change nothing on the simulator, in confctl or on the page."""
    stack = console.stack
    try:
        _, room = await call_with_alice(stack)
        await add(stack, room, {"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "monitor"})
        await patch(stack, room, "alice", {"hold": True})
        page = await console.open(browser, "refusals")
        await console.open_detail(room)
        before = await stack.conference(room)
        truth = await stack.ground_truth(room)
        await page.wait_for_function("(v) => window.confctlConsole.version === v", arg=before["version"],
                                     timeout=WAIT_MS)
        drawn = await drawing(console)

        row = console.participant("sue")

        async def coach_alice() -> None:
            await page.select_option(f"{row} select[data-field=mode]", "coach")
            await page.select_option(f"{row} select[data-field=coach]", "alice")
            await page.click(f"{row} button[data-action=switch]")

        await refusal(console, coach_alice, 409, "coach_target_on_hold")

        async def add_invalid() -> None:
            form = "form#add-participant"
            await page.select_option(f"{form} select[name=role]", "agent")
            await page.fill(f"{form} input[name=to]", "12345")
            await page.fill(f"{form} input[name=label]", "bob")
            await page.click(f"{form} button[type=submit]")

        await refusal(console, add_invalid, 422, "invalid_address")
        await stack.settle()
        assert await stack.conference(room) == before, "confctl changed nothing"
        assert await stack.ground_truth(room) == truth, "Twilio was asked nothing"
        assert await drawing(console) == drawn and await page.evaluate("window.confctlConsole.version") == \
            before["version"], "nor did the page"

        # A transfer already ringing (through the API): a second one, started in the console, is refused.
        await patch(stack, room, "alice", {"hold": False})
        await stack.set_directory("client:carol", "answer", after_s=1000)
        response = await stack.api.post(f"/v1/conferences/{room}/transfers",
                                        json={"kind": "warm", "from": "alice", "to": "client:carol",
                                              "label": "carol", "timeout_s": 600})  # rings on under load
        assert response.status_code == 202, response.text
        await stack.settle(until_quiet=False)
        transfer = response.json()["id"]
        await page.wait_for_selector(f'#transfer [data-transfer="{transfer}"][data-state="dialing"]',
                                     timeout=WAIT_MS)
        before = await stack.conference(room)
        await page.wait_for_function("(v) => window.confctlConsole.version === v", arg=before["version"],
                                     timeout=WAIT_MS)

        async def second_transfer() -> None:
            form = "form#warm-transfer"
            await page.select_option(f"{form} select[name=from]", "alice")
            await page.fill(f"{form} input[name=to]", "client:dave")
            await page.click(f"{form} button[type=submit]")

        await refusal(console, second_transfer, 409, "transfer_in_progress")
        await stack.settle(until_quiet=False)
        # carol's leg goes on ringing (its own events); the refused transfer added nothing.
        after = await stack.conference(room)
        assert [t["id"] for t in after["transfers"]] == [transfer]
        assert [p["label"] for p in after["participants"]] == [p["label"] for p in before["participants"]]
        assert (await stack.api.get(f"/v1/transfers/{transfer}")).json()["state"] == "dialing"
        assert await page.locator('#participants tr[data-participant="dave"]').count() == 0
    finally:
        await console.close()
    console.assert_clean(refused=[409, 422, 409])
    assert_keys_unique()


async def test_end_and_remove_ask_first(browser: Any, console: Console) -> None:
    """End and remove open #confirm with the focus on "no"; "no" and Escape send nothing and leave the call as
    it was; "yes" removes alice, then ends the conference (the simulator's conference completed, the page
    showing it completed from the stream)."""
    stack = console.stack
    try:
        _, room = await call_with_alice(stack)
        page = await console.open(browser, "confirm")
        await console.open_detail(room)
        dialog = page.locator("dialog#confirm")

        async def ask(button: str) -> None:
            await page.click(button)
            await page.wait_for_selector("dialog#confirm[open]", timeout=WAIT_MS)
            assert await page.evaluate("document.activeElement.id") == "confirm-no", "the focus starts on no"
            assert (await page.locator("#confirm-message").inner_text()).strip()

        end = "#detail button[data-action=end]"
        remove = console.button("alice", "remove")
        for button in (end, remove):
            await ask(button)
            await page.click("#confirm-no")
            await page.wait_for_selector("dialog#confirm:not([open])", state="attached", timeout=WAIT_MS)
            await ask(button)
            await page.keyboard.press("Escape")
            await page.wait_for_selector("dialog#confirm:not([open])", state="attached", timeout=WAIT_MS)
        await page.wait_for_timeout(300)
        assert console.actions() == [], "no and Escape send nothing"
        assert not await dialog.evaluate("d => d.open")
        assert (await stack.ground_truth(room))["status"] == "in-progress"
        assert await truth_of(stack, room, "alice") is not None

        await ask(remove)
        await page.click("#confirm-yes")
        await until(lambda: absent(stack, room, "alice"), "alice's leg ended on the simulator")
        await page.wait_for_selector(f'{console.participant("alice")} [data-col=status]:text("left")',
                                     timeout=WAIT_MS)

        await ask(end)
        await page.click("#confirm-yes")
        await until(lambda: completed(stack, room), "the simulator's conference completed")
        await page.wait_for_function("/ended|completed/i.test(document.querySelector('#detail h2').textContent)",
                                     timeout=WAIT_MS)
        await agrees_with_api(console, room)
        await page.check("#show-ended")
        await page.wait_for_selector(f'{console.row(room)}[data-status="completed"]', timeout=WAIT_MS)
    finally:
        await console.close()
    assert [(h.method, h.target) for h in console.actions()] == [
        ("DELETE", f"/v1/conferences/{room}/participants/alice"), ("POST", f"/v1/conferences/{room}/end")]
    console.assert_clean()
    assert_keys_unique()


async def test_each_action_has_its_own_idempotency_key_and_a_retry_reuses_it(
        browser: Any, console: Console) -> None:
    """Hold, unhold, mute, unmute and an added agent: five user actions, five requests, five different
    Idempotency-Keys; an action whose answer the network lost is sent again with its same key and is carried
    out once."""
    stack, wire = console.stack, console.wire
    try:
        _, room = await call_with_alice(stack)
        page = await console.open(browser, "keys")
        await console.open_detail(room)
        for action, field_, value in (("hold", "hold", True), ("unhold", "hold", False), ("mute", "muted", True),
                                      ("unmute", "muted", False)):
            await page.click(console.button("customer", action))
            await until(lambda f=field_, v=value: leg_is(stack, room, "customer", f, v),
                        f"customer {field_}={value} on the simulator")
            await console.wait_feedback("done")
        form = "form#add-participant"
        await page.select_option(f"{form} select[name=role]", "agent")
        await page.fill(f"{form} input[name=to]", "client:bob")
        await page.fill(f"{form} input[name=label]", "bob")
        await page.click(f"{form} button[type=submit]")
        await until(lambda: leg_is(stack, room, "bob", "status", "connected"), "bob joined on the simulator")
        await console.wait_feedback("done")
        sent = console.actions()
        assert [h.method for h in sent] == ["PATCH"] * 4 + ["POST"], [(h.method, h.target) for h in sent]
        keys = [h.headers.get("idempotency-key") for h in sent]
        assert all(keys) and len(set(keys)) == 5, keys

        # The answer to the next action is lost on its way back: the page asks again, with the same key, and
        # confctl answers the repeat with the first answer (adding a participant takes keys), dialing once.
        await agrees_with_api(console, room)
        await page.wait_for_timeout(300)  # no re-read in flight: every connection but the stream's is idle
        wire.lose_next_answer("POST")
        await page.fill(f"{form} input[name=to]", "client:carol")
        await page.fill(f"{form} input[name=label]", "carol")
        await page.click(f"{form} button[type=submit]")
        await until(lambda: leg_is(stack, room, "carol", "status", "connected"), "carol joined on the simulator")
        await console.wait_feedback("done")
        retried = console.actions()[5:]
        assert len(retried) == 2 and len(console.requests) == 7, "the answer was lost: the page itself asked again"
        assert {h.headers.get("idempotency-key") for h in retried} == {retried[0].headers["idempotency-key"]}, \
            "with the same key"
        assert retried[0].headers["idempotency-key"] not in keys
        dials = [e for e in await stack.events(room) if e["type"] == "participant.dial_requested"
                 and e["data"].get("label") == "carol"]
        assert len(dials) == 1, dials
    finally:
        await console.close()
    console.assert_clean(network=True)
    assert len(console.network_errors) == 1, "chromium logged the lost answer, and nothing else"
    # The retry is the same user action: the module's check counts it once.
    SENT[:] = [s for s in SENT if s[0] != "keys"] + [("keys", h.method, h.target, h.headers.get("idempotency-key"))
                                                     for h in [*sent, retried[0]]]
    assert_keys_unique()


async def test_the_keyboard_alone_opens_a_conference_and_holds_the_customer(
        browser: Any, console: Console) -> None:
    """From the top of the page, Tab and Enter open the conference from the list, and Tab and Space press the
    customer's hold button: the customer is held on the simulator. No mouse."""
    stack = console.stack
    try:
        _, room = await call_with_alice(stack)
        page = await console.open(browser, "keyboard")
        await page.wait_for_selector(console.row(room), timeout=WAIT_MS)
        await page.evaluate("document.activeElement?.blur()")

        async def tab_to(selector: str, limit: int = 80) -> None:
            for _ in range(limit):
                await page.keyboard.press("Tab")
                if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
                    return
            focused = await page.evaluate("document.activeElement?.outerHTML.slice(0, 120)")
            raise AssertionError(f"{selector} not reached by {limit} Tabs (focus on {focused})")

        await tab_to(f'{console.row(room)} a[href="#/conferences/{room}"]')
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f'#detail[data-conference="{room}"] {console.participant("customer")}',
                                     timeout=WAIT_MS)
        await tab_to(console.button("customer", "hold"))
        await page.keyboard.press("Space")
        await held_on_twilio(stack, room, "customer", True)
        await console.wait_edge("customer", "music", present=True)
    finally:
        await console.close()
    console.assert_clean()
    assert_keys_unique()
