"""Every console action not covered by test_console.py, clicked and filled in a real browser (Debian's chromium).

Warm transfer (complete, and cancel), cold transfer to a target that fails with its fallback, a supervisor added
in monitor and switched to coach and barge, recording pause/resume/stop, mute/unmute of an agent, removal of a
supervisor and an added external party: each is driven through the console's own controls, and checked
against the simulator's ground truth (what Twilio would say), confctl's API afterwards, and the drawing (which
must equal `/audibility`). Every request carries its own Idempotency-Key, `#feedback` goes pending then done,
destructive ones ask in `#confirm` before anything is sent, and the browser logs no error or warning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.support import WAIT_MS, Edge, call_with_alice, mint, serve, sign_in, until, wanted_edges, watch
from tests.browser.support import drawn as drawing_of
from tests.e2e.support import Stack, normalized

# Every data-state #feedback takes, and the version the page showed when it took it: a MutationObserver keeps
# each change's old value, so that two changes in one task are both seen (the value after change i is the old
# value of change i + 1, or the current one). Its callback is a microtask right after the change, before any
# other re-read (a network task) can land, so the version is the one the page showed with that state.
WATCH_FEEDBACK_JS = """() => {
  window.feedbackOld = [];
  new MutationObserver((records) => {
    for (const r of records) window.feedbackOld.push([r.oldValue, window.confctlConsole.version]);
  }).observe(document.querySelector('#feedback'), {attributes: true, attributeFilter: ['data-state'],
                                                   attributeOldValue: true});
}"""
FEEDBACK_STATES_JS = """() => { const o = window.feedbackOld;
  return o.map(([, version], i) => [i + 1 < o.length ? o[i + 1][0] : document.querySelector('#feedback')
                                    .dataset.state, version]); }"""
# What Twilio says of a leg whose flags changed: its answer to the update, or the `participant-modify` callback.
TWILIO_SAYS_MODIFIED = {"participant.updated", "participant.modified"}
# Every Idempotency-Key the console sent in this module: no two actions share one.
KEYS_SENT: list[str] = []


@dataclass
class Sent:
    """One action request the page sent (anything but a GET)."""

    method: str
    path: str
    key: str | None


@dataclass
class Console:
    """confctl and the simulator, confctl on a real port, and a signed-in console page."""

    stack: Stack
    page: Any
    problems: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    # --- reading the page -------------------------------------------------------------------------------------

    def participant(self, label: str) -> str:
        return f'#participants tr[data-participant="{label}"]'

    def button(self, label: str, action: str) -> str:
        return f'{self.participant(label)} button[data-action="{action}"]'

    async def drawn(self) -> set[Edge]:
        return await drawing_of(self.page)

    async def feedback_text(self) -> str:
        text: str = await self.page.locator("#feedback").inner_text()
        return text

    # --- acting through the page -------------------------------------------------------------------------------

    async def act(self, do: Callable[[], Awaitable[None]], *, expect: tuple[str, str], effect: set[str],
                  label: str | None = None, confirm: str | None = None) -> Sent:
        """One user action: `do` clicks or submits; with `confirm` (a word the question must contain) #confirm
        asks first, with the focus on "no" and nothing sent, and is answered yes. Then exactly one request goes
        out, to `expect` (method, path), with a fresh Idempotency-Key, and #feedback goes pending, then done, and
        done no earlier than the page shows the first event of a type in `effect` (about `label`, if given):
        the event carrying the action's effect, not the action's answer."""
        page = self.page
        room: str = await page.evaluate("window.confctlConsole.selected")
        start = (await self.stack.conference(room))["version"]
        await page.evaluate("window.feedbackOld = []")
        before = len(self.sent)
        await do()
        if confirm is not None:
            try:
                await page.wait_for_selector("dialog#confirm[open]", timeout=WAIT_MS)
            except Exception:
                raise AssertionError(f"no confirmation asked; sent {self.sent[before:]}") from None
            assert await page.evaluate("document.activeElement.id") == "confirm-no", "the focus starts on no"
            question = (await page.locator("#confirm-message").inner_text()).strip()
            assert confirm in question, question
            await page.wait_for_timeout(100)
            assert self.sent[before:] == [], "nothing is sent before the answer"
            await page.click("#confirm-yes")
        try:
            await page.wait_for_function(
                f"() => {{ const s = ({FEEDBACK_STATES_JS})().map(([state]) => state); const p = s.indexOf('pending');"
                " return p >= 0 && s.indexOf('done', p) > p; }", timeout=WAIT_MS)
        except Exception:
            states = await page.evaluate(FEEDBACK_STATES_JS)
            raise AssertionError(f"#feedback went {states} ({await self.feedback_text()!r}), wanted pending then"
                                 f" done; sent {self.sent[before:]}") from None
        states = [tuple(s) for s in await page.evaluate(FEEDBACK_STATES_JS)]
        assert [s for s, _ in states] == ["pending", "done"], states
        sent = self.sent[before:]
        assert [(s.method, s.path) for s in sent] == [expect], sent
        key = sent[0].key
        assert key, f"{expect} without an Idempotency-Key"
        assert key not in KEYS_SENT, f"{expect} reuses the Idempotency-Key of an earlier action"
        KEYS_SENT.append(key)
        await self.stack.settle()
        shown = [e for e in await self.stack.events(room) if e["version"] > start and e["type"] in effect
                 and (label is None or e["data"].get("label") == label)]
        assert shown, f"no {effect} event after the action"
        done_at = states[-1][1]
        assert done_at is not None and done_at >= shown[0]["version"], \
            f"done at version {done_at}, before the {shown[0]['type']} at version {shown[0]['version']}"
        return sent[0]

    async def fill_add(self, role: str, to: str, label: str, mode: str | None = None) -> None:
        form = "form#add-participant"
        await self.page.select_option(f"{form} select[name=role]", role)
        await self.page.fill(f"{form} input[name=to]", to)
        await self.page.fill(f"{form} input[name=label]", label)
        if mode is not None:
            await self.page.select_option(f"{form} select[name=mode]", mode)
        await self.page.click(f"{form} button[type=submit]")

    async def switch(self, label: str, mode: str, coach: str | None = None) -> None:
        row = self.participant(label)
        await self.page.select_option(f"{row} select[data-field=mode]", mode)
        if coach is not None:
            await self.page.select_option(f"{row} select[data-field=coach]", coach)
        await self.page.click(f"{row} button[data-action=switch]")

    # --- checking against the simulator and the API ------------------------------------------------------------

    async def agrees(self, room: str) -> dict[str, Any]:
        """Once the stack is quiet: the simulator's who-hears-whom is confctl's `/audibility`, each leg's hold
        and mute agree, and the page shows the API's latest version with a drawing that is `/audibility`, arrow
        for arrow (a coach's arrow to its agent a whisper, music one arrow per listener). Returns it."""
        stack = self.stack
        await stack.settle()
        audibility = await stack.assert_audibility_agrees(room)
        doc = await stack.assert_projection_agrees(room)
        try:
            await self.page.wait_for_function("(v) => window.confctlConsole.version === v", arg=doc["version"],
                                              timeout=WAIT_MS)
        except Exception:
            shown = await self.page.evaluate("window.confctlConsole.version")
            raise AssertionError(f"the page shows version {shown}, the API {doc['version']}") from None
        assert await self.drawn() == wanted_edges(audibility, doc), (audibility, await self.drawn())
        return audibility

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems


@asynccontextmanager
async def console_on(browser: Any, engine: AsyncEngine, **overrides: Any) -> AsyncIterator[Console]:
    """A customer talking with agent alice (set up through the API), and the console open on their conference
    (signed in through its URL fragment, the conference opened from its row's link)."""
    async with serve(engine, **overrides) as (stack, api):
        _, room = await call_with_alice(stack)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        console = Console(stack, page, problems=watch(page))
        page.on("request", lambda r: console.sent.append(
            Sent(r.method, urlsplit(r.url).path, r.headers.get("idempotency-key")))
            if r.method != "GET" else None)
        try:
            await sign_in(page, api, "console", await mint(api))
            await page.click(f'#conferences tr[data-conference="{room}"] a[href="#/conferences/{room}"]')
            await page.wait_for_selector(f'#detail[data-conference="{room}"] {console.participant("alice")}',
                                         timeout=WAIT_MS)
            await page.evaluate(WATCH_FEEDBACK_JS)
            yield console
        finally:
            await page.close()


async def room_of(console: Console) -> str:
    room: str = await console.page.evaluate("window.confctlConsole.selected")
    return room


async def on_twilio(stack: Stack, room: str) -> dict[str, dict[str, Any]]:
    """The simulator's connected legs by label."""
    return {p["label"]: p for p in (await stack.ground_truth(room))["participants"]}


async def absent(stack: Stack, room: str, label: str) -> bool:
    return label not in await on_twilio(stack, room)


async def api_leg(stack: Stack, room: str, label: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/conferences/{room}/participants/{label}")
    assert response.status_code == 200, response.text
    leg: dict[str, Any] = response.json()
    return leg


async def api_transfer(stack: Stack, transfer_id: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/transfers/{transfer_id}")
    assert response.status_code == 200, response.text
    transfer: dict[str, Any] = response.json()
    return transfer


# --- the tests -------------------------------------------------------------------------------------------------


async def test_warm_transfer_completed_then_a_second_one_cancelled(browser: Any, engine: AsyncEngine) -> None:
    """A warm transfer from alice to client:bob filled in `form#warm-transfer` shows consulting in #transfer (and
    in the list) with the customer held on music in the drawing, as on the simulator; Complete hands the
    customer to bob and alice leaves. A second one, from bob to carol, is cancelled through Cancel and its
    confirmation: carol's leg ends and the customer is back with bob."""
    async with console_on(browser, engine) as console:
        stack, page = console.stack, console.page
        room = await room_of(console)
        form = "form#warm-transfer"

        async def warm(from_: str, to: str, label: str) -> None:
            await page.select_option(f"{form} select[name=from]", from_)
            await page.fill(f"{form} input[name=to]", to)
            await page.fill(f"{form} input[name=label]", label)
            await page.click(f"{form} button[type=submit]")

        await console.act(lambda: warm("alice", "client:bob", "bob"),
                          expect=("POST", f"/v1/conferences/{room}/transfers"), effect={"transfer.consulting"})
        first = (await stack.conference(room))["transfers"][-1]
        assert (first["kind"], first["from"], first["to"], first["state"]) == ("warm", "alice", "client:bob",
                                                                                "consulting"), first
        await page.wait_for_selector(f'#transfer [data-transfer="{first["id"]}"][data-state="consulting"]',
                                     timeout=WAIT_MS)
        legs = await on_twilio(stack, room)
        assert legs["customer"]["hold"] and {"alice", "bob"} <= legs.keys(), legs
        assert normalized(await console.agrees(room)) == {
            "hears": {"alice": ["bob"], "bob": ["alice"], "customer": []}, "music": ["customer"]}
        assert ("customer", "music", "music") in await console.drawn(), "the customer is drawn on music"
        assert await page.locator('#hears g[data-node="music"]').count() == 1
        listed = await page.locator(f'#conferences tr[data-conference="{room}"] [data-col=transfer]').inner_text()
        assert "consulting" in listed and "bob" in listed, listed

        await console.act(lambda: page.click('#transfer button[data-action="complete-transfer"]'),
                          expect=("POST", f"/v1/transfers/{first['id']}/complete"), effect={"transfer.completed"})
        assert (await api_transfer(stack, first["id"]))["state"] == "completed"
        await until(lambda: absent(stack, room, "alice"), "alice's leg ended on the simulator")
        assert normalized(await console.agrees(room)) == {
            "hears": {"bob": ["customer"], "customer": ["bob"]}, "music": []}
        assert (await api_leg(stack, room, "alice"))["status"] == "left"
        await page.wait_for_selector(f'{console.participant("alice")}[data-status="left"]', timeout=WAIT_MS)
        await page.wait_for_selector(f'#transfer [data-transfer="{first["id"]}"][data-state="completed"]',
                                     timeout=WAIT_MS)

        await console.act(lambda: warm("bob", "client:carol", "carol"),
                          expect=("POST", f"/v1/conferences/{room}/transfers"), effect={"transfer.consulting"})
        second = (await stack.conference(room))["transfers"][-1]
        assert second["id"] != first["id"] and second["state"] == "consulting", second
        await page.wait_for_selector(f'#transfer [data-transfer="{second["id"]}"][data-state="consulting"]',
                                     timeout=WAIT_MS)
        await console.agrees(room)
        await console.act(lambda: page.click('#transfer button[data-action="cancel-transfer"]'), confirm="Cancel",
                          expect=("POST", f"/v1/transfers/{second['id']}/cancel"), effect={"transfer.cancelled"})
        assert (await api_transfer(stack, second["id"]))["state"] == "cancelled"
        await until(lambda: absent(stack, room, "carol"), "carol's leg ended on the simulator")
        legs = await on_twilio(stack, room)
        assert set(legs) == {"customer", "bob"} and not legs["customer"]["hold"], legs
        assert normalized(await console.agrees(room)) == {
            "hears": {"bob": ["customer"], "customer": ["bob"]}, "music": []}
        assert (await api_leg(stack, room, "carol"))["status"] == "left"
        await page.wait_for_selector(f'#transfer [data-transfer="{second["id"]}"][data-state="cancelled"]',
                                     timeout=WAIT_MS)
    console.assert_clean()


@pytest.mark.parametrize("behavior", ["busy", "no-answer"])
async def test_cold_transfer_asks_first_and_dials_the_fallback_when_the_target_fails(
        browser: Any, engine: AsyncEngine, behavior: str) -> None:
    """A cold transfer filled in `form#cold-transfer` (alice to client:bob, fallback client:queue) asks in
    #confirm before sending anything; bob is busy (or does not answer) on the simulator, so the fallback is
    dialed and joins: the transfer completes to client:queue, the customer talks with it, alice has left."""
    async with console_on(browser, engine) as console:
        stack, page = console.stack, console.page
        room = await room_of(console)
        await stack.set_directory("client:bob", behavior)
        form = "form#cold-transfer"

        async def cold() -> None:
            await page.select_option(f"{form} select[name=from]", "alice")
            await page.fill(f"{form} input[name=to]", "client:bob")
            await page.fill(f"{form} input[name=fallback_to]", "client:queue")
            await page.click(f"{form} button[type=submit]")

        # Escape on the question sends nothing: alice is still with the customer.
        await cold()
        await page.wait_for_selector("dialog#confirm[open]", timeout=WAIT_MS)
        await page.keyboard.press("Escape")
        await page.wait_for_selector("dialog#confirm:not([open])", state="attached", timeout=WAIT_MS)
        await page.wait_for_timeout(200)
        assert console.sent == [] and set(await on_twilio(stack, room)) == {"customer", "alice"}
        assert (await stack.conference(room))["transfers"] == []

        await console.act(cold, confirm="client:queue", expect=("POST", f"/v1/conferences/{room}/transfers"),
                          effect={"transfer.completed"})
        transfer = (await stack.conference(room))["transfers"][-1]
        assert (transfer["kind"], transfer["state"], transfer["to"]) == ("cold", "completed", "client:queue"), \
            transfer
        target = transfer["target_label"]
        # What the supervisor is told: not only "completed", but that the target did not take the call and the
        # fallback did.
        told = await console.feedback_text()
        assert "client:bob" in told and "fallback" in told and "client:queue" in told, told
        events = [e["type"] for e in await stack.events(room)]
        assert "transfer.fallback_dialed" in events, events
        await until(lambda: absent(stack, room, "alice"), "alice's leg ended on the simulator")
        legs = await on_twilio(stack, room)
        assert set(legs) == {"customer", target} and not legs["customer"]["hold"], legs
        assert normalized(await console.agrees(room)) == {
            "hears": {"customer": [target], target: ["customer"]}, "music": []}
        # The target's own leg failed as the simulator said it would, and is shown so.
        failed = [p for p in (await stack.conference(room))["participants"] if p["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["label"] != target, failed
        assert (await stack.sim_call(failed[0]["call_sid"]))["status"] == behavior
        await page.wait_for_selector(f'{console.participant(failed[0]["label"])}[data-status="failed"]',
                                     timeout=WAIT_MS)
        await page.wait_for_selector(f'#transfer [data-transfer="{transfer["id"]}"][data-state="completed"]',
                                     timeout=WAIT_MS)
        await page.wait_for_selector(f'{console.participant(target)}[data-status="joined"]', timeout=WAIT_MS)
    console.assert_clean()


async def test_a_supervisor_added_in_monitor_switches_to_coach_and_barge_and_is_removed(
        browser: Any, engine: AsyncEngine) -> None:
    """Supervisor sue added in monitor through `form#add-participant`, then switched with her row's selects and
    Switch to coach (of alice) and to barge: at each step the simulator's legs (muted, coaching whom) and its
    audibility follow, and the drawing equals `/audibility` (the coach a one-way whisper to alice); removing
    her (after #confirm) ends her leg."""
    async with console_on(browser, engine) as console:
        stack = console.stack
        room = await room_of(console)
        participants = f"/v1/conferences/{room}/participants"

        await console.act(lambda: console.fill_add("supervisor", "client:sue", "sue", mode="monitor"),
                          expect=("POST", participants), effect={"participant.joined"}, label="sue")
        legs = await on_twilio(stack, room)
        assert legs["sue"]["muted"] and not legs["sue"]["coaching"], legs["sue"]
        monitor = normalized(await console.agrees(room))
        assert monitor["hears"]["sue"] == ["alice", "customer"] and "sue" not in monitor["hears"]["alice"]
        assert (await api_leg(stack, room, "sue"))["mode"] == "monitor"

        await console.act(lambda: console.switch("sue", "coach", coach="alice"),
                          expect=("PATCH", f"{participants}/sue"), effect=TWILIO_SAYS_MODIFIED, label="sue")
        legs = await on_twilio(stack, room)
        assert legs["sue"]["coaching"] and legs["sue"]["call_sid_to_coach"] == legs["alice"]["call_sid"], legs["sue"]
        coach = normalized(await console.agrees(room))
        assert "sue" in coach["hears"]["alice"] and "sue" not in coach["hears"]["customer"], coach
        assert ("alice", "sue", "whisper") in await console.drawn()
        sue = await api_leg(stack, room, "sue")
        assert (sue["mode"], sue["coach"]) == ("coach", "alice"), sue

        await console.act(lambda: console.switch("sue", "barge"), expect=("PATCH", f"{participants}/sue"),
                          effect=TWILIO_SAYS_MODIFIED, label="sue")
        legs = await on_twilio(stack, room)
        assert not legs["sue"]["muted"] and not legs["sue"]["coaching"], legs["sue"]
        barge = normalized(await console.agrees(room))
        assert "sue" in barge["hears"]["alice"] and "sue" in barge["hears"]["customer"], barge
        assert (await api_leg(stack, room, "sue"))["mode"] == "barge"
        assert await console.page.locator(f'{console.participant("sue")} [data-col=mode]').inner_text() == "barge"

        await console.act(lambda: console.page.click(console.button("sue", "remove")), confirm="sue",
                          expect=("DELETE", f"{participants}/sue"), effect={"participant.left"}, label="sue")
        await until(lambda: absent(stack, room, "sue"), "sue's leg ended on the simulator")
        assert "sue" not in normalized(await console.agrees(room))["hears"]
        assert (await api_leg(stack, room, "sue"))["status"] == "left"
        assert await console.page.locator('#hears g[data-node="sue"]').count() == 0
    console.assert_clean()


async def test_an_agent_muted_and_unmuted_and_an_external_party_added(browser: Any, engine: AsyncEngine) -> None:
    """Mute on alice's row mutes her leg on the simulator (the customer no longer hears her, she still hears
    the customer), Unmute undoes it; an external party added through `form#add-participant` joins and talks
    with both."""
    async with console_on(browser, engine) as console:
        stack, page = console.stack, console.page
        room = await room_of(console)
        alice = f"/v1/conferences/{room}/participants/alice"

        await console.act(lambda: page.click(console.button("alice", "mute")), expect=("PATCH", alice),
                          effect={"participant.updated", "participant.muted"}, label="alice")
        assert (await on_twilio(stack, room))["alice"]["muted"]
        assert normalized(await console.agrees(room)) == {
            "hears": {"alice": ["customer"], "customer": []}, "music": []}
        assert await page.locator(f'{console.participant("alice")} [data-col=muted]').inner_text() != ""

        await console.act(lambda: page.click(console.button("alice", "unmute")), expect=("PATCH", alice),
                          effect={"participant.updated", "participant.unmuted"}, label="alice")
        assert not (await on_twilio(stack, room))["alice"]["muted"]
        assert normalized(await console.agrees(room)) == {
            "hears": {"alice": ["customer"], "customer": ["alice"]}, "music": []}
        assert await page.locator(f'{console.participant("alice")} [data-col=muted]').inner_text() == ""

        await console.act(lambda: console.fill_add("external", "+15557654321", "carol"),
                          expect=("POST", f"/v1/conferences/{room}/participants"), effect={"participant.joined"},
                          label="carol")
        legs = await on_twilio(stack, room)
        assert set(legs) == {"customer", "alice", "carol"}, legs
        assert normalized(await console.agrees(room))["hears"]["carol"] == ["alice", "customer"]
        carol = await api_leg(stack, room, "carol")
        assert (carol["role"], carol["status"]) == ("external", "joined"), carol
        assert (await stack.sim_call(carol["call_sid"]))["to"] == "+15557654321"
        await page.wait_for_selector(f'{console.participant("carol")}[data-role="external"][data-status="joined"]',
                                     timeout=WAIT_MS)
    console.assert_clean()


async def test_recording_paused_resumed_and_stopped(browser: Any, engine: AsyncEngine) -> None:
    """On a recorded call, Pause, Resume and Stop (Stop after #confirm) change the recording on the simulator,
    in confctl's API, and in `#detail-recording`, each in turn."""
    async with console_on(browser, engine, record=True) as console:
        stack, page = console.stack, console.page
        room = await room_of(console)
        recording = f"/v1/conferences/{room}/recording"

        async def twilio_says() -> str:
            status: str = (await stack.ground_truth(room))["recordings"][-1]["status"]
            return status

        async def shown(statuses: tuple[str, ...]) -> str:
            await page.wait_for_function(
                "(s) => s.includes(document.querySelector('#detail-recording').dataset.recording)",
                arg=list(statuses), timeout=WAIT_MS)
            text: str = (await page.locator("#detail-recording").inner_text()).strip()
            return text

        assert await twilio_says() == "in-progress"
        assert await shown(("in-progress",)) == "in-progress"
        steps = (("pause-recording", None, ("paused",)), ("resume-recording", None, ("in-progress",)),
                 ("stop-recording", "Stop", ("stopped", "processing", "completed")))
        for action, confirm, statuses in steps:
            await console.act(lambda a=action: page.click(f'#conference-actions button[data-action="{a}"]'),
                              confirm=confirm, expect=("POST", recording), effect={"recording.updated"})
            await stack.settle()
            assert await twilio_says() in statuses, action
            ours = (await stack.conference(room))["recording"]["status"]
            assert ours in statuses, (action, ours)
            assert await shown((ours,)) == ours
        for action in ("pause-recording", "resume-recording", "stop-recording"):
            assert not await page.locator(f'#conference-actions button[data-action="{action}"]').is_visible(), \
                f"{action} is offered for a stopped recording"
    console.assert_clean()
