"""The console and the wallboard are accessible and usable, checked in a real browser (Debian's chromium).

axe-core (pinned in tests/clients/ts/package.json, installed into .cache/npm-clients by tests/clients/ts/install,
which scripts/bootstrap runs; nothing is downloaded here) is injected into each page and run with the WCAG 2.1
A and AA rules, at 1280x800 (a laptop) and 1920x1080 (a wall screen), in light and dark. At each of those the
page also has no horizontal scrollbar and nothing clipped, every control has an accessible name and shows
where the keyboard focus is, and the browser logs no error or warning. Screenshots go to test-artifacts/;
with CONFCTL_UPDATE_SCREENSHOTS=1 the two the README shows are copied to docs/screenshots/ too.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.support import add, mint, patch, post, serve, sign_in, signed_out, watch
from tests.e2e.support import Stack

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
AXE = REPO / ".cache" / "npm-clients" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = [(1280, 800), (1920, 1080)]
SCHEMES = ["light", "dark"]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# The README's two images: which artifact each is a copy of, and its size.
README_IMAGES = {"console.png": ("console-1920x1080.png", (1920, 1080)),  # wide enough to show the drawing
                 "wallboard.png": ("wallboard-1920x1080.png", (1920, 1080))}

# Accepted axe findings, each with why: (rule id, CSS selector of the node). None so far.
EXCEPTIONS: set[tuple[str, str]] = set()

# Runs in the page: what a person would miss. Elements whose content is clipped (overflow hidden or clip and
# content wider or taller than the box), and visible elements that stick out of the viewport to the side.
CLIPPED_JS = """() => {
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    [...e.attributes].filter(a => a.name.startsWith('data-')).map(a => `[${a.name}="${a.value}"]`).join('');
  const found = [];
  const scrolls = (o) => o === 'auto' || o === 'scroll';
  for (const e of document.body.querySelectorAll('*')) {
    const box = e.getBoundingClientRect();
    // Boxes of a pixel or two are text for screen readers only (the usual visually-hidden pattern).
    if (box.width <= 2 || box.height <= 2 || e.closest('[hidden]')) continue;
    const style = getComputedStyle(e);
    if (style.visibility === 'hidden') continue;
    const cuts = (o) => o === 'hidden' || o === 'clip';
    if (cuts(style.overflowX) && e.scrollWidth > e.clientWidth + 1) found.push(name(e) + ' clipped across');
    if (cuts(style.overflowY) && e.scrollHeight > e.clientHeight + 1) found.push(name(e) + ' clipped down');
    // Inside a box that scrolls, content beyond the screen's edge is one scroll away, not lost.
    let inScroller = false;
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(getComputedStyle(a).overflowX)) { inScroller = true; break; }
    }
    const width = document.documentElement.clientWidth;
    if (!inScroller && (box.left < -1 || box.right > width + 1)) found.push(name(e) + ' off screen');
  }
  return found;
}"""

# Runs in the page: every shown control (button, input, select, textarea, link) without an accessible name, by
# axe's own computation of the name (the one screen readers get). Hidden ones have none until shown: each
# test checks its page in the states that show them.
UNNAMED_JS = """() => {
  // While a modal dialog is open the rest of the page is inert (nameless to screen readers): only its controls.
  const scope = document.querySelector('dialog:modal') ?? document;
  axe.setup(document);
  try {
    return [...scope.querySelectorAll('button, input, select, textarea, a[href]')]
      .filter(e => e.checkVisibility() && !axe.commons.text.accessibleText(e).trim())
      .map(e => e.outerHTML.slice(0, 120));
  } finally { axe.teardown(); }
}"""

# Runs in the page: the focused element and whether its focus ring shows (outline or box-shadow).
FOCUS_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  return {tag: e.tagName.toLowerCase(), html: e.outerHTML.slice(0, 120), ring, visible: e.matches(':focus-visible')};
}"""


@pytest.fixture
async def served(engine: AsyncEngine) -> AsyncIterator[tuple[Stack, str]]:
    """confctl (recording every conference, the simulator behind it) on a real port, serving its pages."""
    async with serve(engine, record=True) as stack_and_api:
        yield stack_and_api


async def busy_floor(stack: Stack) -> str:
    """A floor with something in every state: returns the conference to open, where alice talks with the
    customer, sue coaches alice, the call is recorded and alice consults carol on a warm transfer; a second
    customer waits, a third is on hold with bob."""
    _, room = await stack.inbound_call(from_="+15551230001")
    await stack.inbound_call(from_="+15551230002")
    _, held = await stack.inbound_call(from_="+15551230003")
    await add(stack, room, {"to": "client:alice", "role": "agent", "label": "alice"})
    await add(stack, room, {"to": "client:sue", "role": "supervisor", "label": "sue", "mode": "coach",
                            "coach": "alice"})
    await add(stack, held, {"to": "client:bob", "role": "agent", "label": "bob"})
    await patch(stack, held, "customer", {"hold": True})
    await post(stack, f"/v1/conferences/{room}/transfers", {"kind": "warm", "from": "alice", "to": "client:carol",
                                                            "label": "carol"})
    doc = await stack.conference(room)
    assert doc["recording"] and doc["recording"]["status"] == "in-progress", doc["recording"]
    assert [t["state"] for t in doc["transfers"]] == ["consulting"], doc["transfers"]
    return room


async def axe(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now (minus the accepted EXCEPTIONS)."""
    assert AXE.is_file(), f"{AXE} is missing: tests/clients/ts/install (run by scripts/bootstrap) installs it"
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags},"
                                 " resultTypes: ['violations']})", WCAG)
    found = []
    for violation in result["violations"]:
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            if (violation["id"], target) not in EXCEPTIONS:
                why = " ".join(line.strip() for line in node["failureSummary"].splitlines()[:3])
                found.append(f"{violation['id']} ({violation['impact']}) at {target}: {why}")
    return found


async def layout(page: Any) -> list[str]:
    """What is wrong with the layout as shown: a horizontal scrollbar, clipped or off-screen content."""
    wide = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    found = [f"horizontal scrollbar: {wide[0]} > {wide[1]}"] if wide[0] > wide[1] else []
    return found + list(await page.evaluate(CLIPPED_JS))


async def audit(page: Any, where: str) -> list[str]:
    """What axe, the layout check and the controls' names find wrong on the page as it is now."""
    found = {"axe": await axe(page), "layout": await layout(page), "unnamed": list(await page.evaluate(UNNAMED_JS))}
    return [f"{where}: {kind}: {problem}" for kind, problems in found.items() for problem in problems]


async def audit_everywhere(page: Any, which: str) -> list[str]:
    """Audit the page at each size in each scheme, with a screenshot of each in test-artifacts/ (named after
    `which`, the page, and the size; those the README shows published)."""
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    for scheme in SCHEMES:
        await page.emulate_media(color_scheme=scheme)
        for width, height in SIZES:
            await page.set_viewport_size({"width": width, "height": height})
            problems += await audit(page, f"{which} {width}x{height} {scheme}")
            name = f"{which}-{width}x{height}{'-dark' if scheme == 'dark' else ''}.png"
            await page.screenshot(path=str(ARTIFACTS / name))
            publish(name)
    return problems


def clean(problems: list[str]) -> None:
    """Fails with every problem found, one a line (all states of a page at once, not only the first)."""
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


async def tab_through(page: Any, steps: int = 300) -> list[dict[str, Any]]:
    """Tab round the whole page, from wherever the focus is until it comes back to the first element it
    reached (past the end, focus leaves the page and comes in again at the top); returns each focused element
    and whether its focus ring showed."""
    seen: list[dict[str, Any]] = []
    for _ in range(steps):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUS_JS)
        if focused is None:
            continue  # between the last control and the first
        if seen and focused["html"] == seen[0]["html"]:
            return seen
        seen.append(focused)
    raise AssertionError(f"Tab did not come round in {steps} presses: {[f['html'] for f in seen[-5:]]}")


def png_size(path: Path) -> tuple[int, int]:
    """The width and height a PNG file says in its header (and that it is a PNG at all)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def publish(name: str) -> None:
    """With CONFCTL_UPDATE_SCREENSHOTS=1, copy the artifact a README image is made from to docs/screenshots/."""
    if not os.environ.get("CONFCTL_UPDATE_SCREENSHOTS"):
        return
    for image, (artifact, _) in README_IMAGES.items():
        if artifact == name:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ARTIFACTS / artifact, SCREENSHOTS / image)


async def test_wallboard_passes_axe_and_fits_at_both_sizes_in_light_and_dark(
    browser: Any, served: tuple[Stack, str]
) -> None:
    """The signed-in wallboard, showing a busy floor, has no WCAG 2.1 A/AA violation, no horizontal scrollbar and
    no clipped number at 1280x800 and 1920x1080, in light and dark, and logs no error or warning."""
    stack, api = served
    await busy_floor(stack)
    problems: list[str] = []
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    logged = watch(page)
    try:
        await sign_in(page, api, "wallboard", await mint(api))
        await page.wait_for_function("window.wallboard.counts", timeout=5000)
        await page.wait_for_function("document.querySelector('[data-count=live]').textContent === '3'",
                                     timeout=5000)
        # A longest hold of a few seconds, not 0:00, on the screenshots.
        await page.wait_for_function("document.querySelector('[data-count=longest_hold]').dataset.seconds >= 2",
                                     timeout=5000)
        problems += await audit_everywhere(page, "wallboard")
    finally:
        await page.close()
    clean(problems)
    assert logged == [], logged


async def test_wallboard_sign_in_works_with_the_keyboard(browser: Any, served: tuple[Stack, str]) -> None:
    """Signed out, the wallboard's form passes axe, Tab reaches its field and button with a visible focus
    ring, and typing a token then Enter signs in."""
    _, api = served
    problems: list[str] = []
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    logged = watch(page)
    try:
        await signed_out(page, api, "wallboard")
        problems += await audit(page, "wallboard sign-in")
        focused = await tab_through(page)
        assert sorted(f["tag"] for f in focused) == ["button", "input"], focused
        assert all(f["ring"] and f["visible"] for f in focused), focused
        await page.locator("#token").focus()
        await page.keyboard.type(await mint(api))
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.querySelector('#status').dataset.state === 'live'"
                                     " && window.wallboard.ready", timeout=5000)
        assert await page.is_hidden("#signin")
    finally:
        await page.close()
    clean(problems)
    assert logged == [], logged


async def open_console(page: Any, api: str, room: str) -> None:
    """Sign in to the console by its URL fragment, then open `room` from the list with the keyboard (its
    link focused, Enter), and wait until the detail shows its current version and the drawing."""
    await sign_in(page, api, "console", await mint(api))
    link = page.locator(f'#conferences tr[data-conference="{room}"] a[href]')
    await link.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "(room) => window.confctlConsole.selected === room && window.confctlConsole.version !== null"
        " && document.querySelectorAll('#hears [data-node]').length >= 4"
        " && document.querySelector('#transfer [data-state=consulting]')", arg=room, timeout=5000)


async def test_console_passes_axe_and_fits_at_both_sizes_in_light_and_dark(
    browser: Any, served: tuple[Stack, str]
) -> None:
    """The console with a live conference open (an agent, a coaching supervisor, a recording, a warm transfer
    consulting) has no WCAG 2.1 A/AA violation, no horizontal scrollbar, nothing clipped and every control
    named, at 1280x800 and 1920x1080, in the system's light and dark and in each forced by the #theme button;
    the confirmation dialog passes too; nothing is logged as an error or warning."""
    stack, api = served
    room = await busy_floor(stack)
    problems: list[str] = []
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    logged = watch(page)
    try:
        await open_console(page, api, room)
        assert (await stack.conference(room))["version"] == await page.evaluate("window.confctlConsole.version")
        await page.evaluate("document.activeElement.blur()")  # no focus ring on the screenshots
        problems += await audit_everywhere(page, "console")
        # The #theme button overrides the system: auto -> dark -> light -> auto. Forced dark on a light system
        # and forced light on a dark one are checked as well.
        background = "getComputedStyle(document.body).backgroundColor"
        await page.emulate_media(color_scheme="light")
        light = await page.evaluate(background)
        await page.click("#theme")
        assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert await page.evaluate(background) != light, "forced dark on a light system"
        problems += await audit(page, "console forced dark on a light system")
        await page.emulate_media(color_scheme="dark")
        await page.click("#theme")
        assert await page.evaluate("document.documentElement.dataset.theme") == "light"
        assert await page.evaluate(background) == light, "forced light on a dark system"
        problems += await audit(page, "console forced light on a dark system")
        await page.click("#theme")
        assert await page.evaluate("document.documentElement.dataset.theme") is None, "back to auto"
        # A destructive action asks first: the dialog passes axe, its focus starts on "no", Escape cancels.
        await page.click("button[data-action=end]")
        await page.wait_for_selector("#confirm[open]", timeout=2000)
        assert await page.evaluate("document.activeElement.id") == "confirm-no"
        problems += await audit(page, "console confirmation dialog")
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#confirm:not([open])", state="hidden", timeout=2000)
    finally:
        await page.close()
    assert (await stack.conference(room))["status"] == "in-progress", "Escape ended nothing"
    clean(problems)
    assert logged == [], logged


async def test_console_controls_are_all_reached_by_tab_with_a_visible_focus_ring(
    browser: Any, served: tuple[Stack, str]
) -> None:
    """With a conference open, Tab from the top reaches every shown, enabled control of the console, and each
    one shows a focus ring (outline or box-shadow) when it has the keyboard focus."""
    stack, api = served
    room = await busy_floor(stack)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    logged = watch(page)
    try:
        await open_console(page, api, room)
        focused = await tab_through(page)
        assert focused, "Tab reaches nothing"
        no_ring = [f["html"] for f in focused if not (f["ring"] and f["visible"])]
        assert no_ring == [], no_ring
        reached = {f["html"] for f in focused}
        controls = await page.evaluate(
            "[...document.querySelectorAll('button, input, select, textarea, a[href]')]"
            ".filter(e => e.checkVisibility() && !e.disabled && e.tabIndex >= 0 && !e.closest('dialog'))"
            ".map(e => e.outerHTML.slice(0, 120))")
        missed = [c for c in controls if c not in reached]
        assert missed == [], missed
    finally:
        await page.close()
    assert logged == [], logged


async def test_console_sign_in_works_with_the_keyboard(browser: Any, served: tuple[Stack, str]) -> None:
    """Signed out, the console's sign-in form passes axe and fits both sizes; Tab reaches the theme button, the
    token field and the sign-in button with a visible focus ring; typing a token then Enter signs in."""
    stack, api = served
    await stack.inbound_call()
    problems: list[str] = []
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    logged = watch(page)
    try:
        await signed_out(page, api, "console")
        for width, height in SIZES:
            await page.set_viewport_size({"width": width, "height": height})
            problems += await audit(page, f"console sign-in {width}x{height}")
        focused = await tab_through(page)
        ids = [await page.evaluate("(html) => html", f["html"]) for f in focused]
        assert all(f["ring"] and f["visible"] for f in focused), focused
        assert any('id="token"' in i for i in ids) and any("Sign in</button>" in i for i in ids), ids
        await page.locator("#token").focus()  # where Tab went: the field
        await page.keyboard.type(await mint(api))
        await page.keyboard.press("Enter")
        await page.wait_for_function("window.confctlConsole.ready && document.querySelector('#status').dataset.state"
                                     " === 'live' && document.querySelectorAll('#conferences tbody tr').length === 1",
                                     timeout=5000)
        assert await page.is_hidden("#signin")
        problems += await audit(page, "console signed in, nothing open")
    finally:
        await page.close()
    clean(problems)
    assert logged == [], logged


def test_readme_screenshots_exist() -> None:
    """The README's two images are in docs/screenshots/, PNGs of the size the test that makes them shoots."""
    for image, (_, size) in README_IMAGES.items():
        path = SCREENSHOTS / image
        assert path.is_file(), f"{path} is missing: CONFCTL_UPDATE_SCREENSHOTS=1 .venv/bin/pytest {__file__}"
        assert png_size(path) == size, (path, png_size(path), size)
