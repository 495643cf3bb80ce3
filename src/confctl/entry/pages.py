"""What confctl's browser pages (the wallboard, the console) share: the stream position a page is served at, and
its static files from the package (so the wheel serves them; no CDN, no build step), the modules both pages import
(static/shared/) among them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from html import escape as html_escape
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse

from confctl.adapters.pg_pool import LazyPool
from confctl.adapters.pg_schema import POSITION_SHIFT
from confctl.domain import announcements, command_events  # noqa: F401  (they register their event types)
from confctl.domain.events import EVENT_TYPES
from confctl.entry.container import Container
from confctl.entry.errors import ApiProblem

STATIC = Path(__file__).parent / "static"
# Sign-in, the stream and the re-reads (session.js): each page serves it beside its own scripts, which import it as
# "./session.js", a relative URL that holds under any prefix a proxy serves confctl under.
SHARED = {"session.js": STATIC / "shared" / "session.js"}

# Below the oldest running transaction's positions every event is stored and projected; any later one is not yet
# (positions are transaction-ordered, see pg_store.READ_ALL_SQL): a page's stream starts there, so it neither
# replays the whole log nor misses an event committed while it loads the conferences.
SAFE_HEAD_SQL = f"SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT}) - 1"

# The pages load only their own scripts and styles and talk only to confctl: a policy that says so turns an
# injected script or a stray third-party URL into a refused load (and a console error the browser tests see).
# Styles set from scripts go through the CSSOM (element.style), which the policy allows; style attributes do not.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the address never carries the token, but a page's links need not say it
    "Cache-Control": "no-store",  # the HTML carries the stream position it was served at
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}  # revalidated by ETag

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


async def safe_head(request: Request) -> int:
    """The global stream position below which every event is stored and projected."""
    container: Container = request.app.state.container
    pool: LazyPool = container.store.pool  # type: ignore[attr-defined]
    return int(await pool.fetchval(SAFE_HEAD_SQL))


async def page(request: Request, html: Path) -> HTMLResponse:
    """The page's HTML with `<body data-after="N" data-root data-event-types>`: the stream position its script
    follows the stream from, the path prefix, and the event types the stream can carry."""
    after = await safe_head(request)
    text = await asyncio.to_thread(html.read_text, encoding="utf-8")  # off the event loop
    root = html_escape(root_path(request), quote=True)
    # The stream's SSE event names are the stored types, and EventSource hears only the names it listens to: the
    # page is told them by the one registry, so a new event type can never be missed by a page's hard-coded copy.
    names = " ".join(sorted(EVENT_TYPES))
    body = f'<body data-after="{after}" data-root="{root}" data-event-types="{names}">'
    return HTMLResponse(text.replace("<body>", body, 1), headers=PAGE_HEADERS)


def root_path(request: Request) -> str:
    """The prefix a proxy serves confctl under (`serve --root-path`), "" at the top: the pages' API paths need it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def asset(path: Path) -> FileResponse:
    """A script or style sheet of a page, with its content type."""
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=ASSET_HEADERS)


def allow_list(folder: Path, names: Iterable[str]) -> dict[str, Path]:
    """The files a page serves, by name: its own in `folder`, and the shared modules."""
    return {**{name: folder / name for name in names}, **SHARED}


def allowed_asset(assets: Mapping[str, Path], page: str, name: str) -> FileResponse:
    """The page's file `name` if it is on its allow-list, else a 404: a path is never joined onto a folder from
    the request."""
    if name not in assets:
        raise ApiProblem(404, "not_found", f"the {page} has no file {name!r}")
    return asset(assets[name])
