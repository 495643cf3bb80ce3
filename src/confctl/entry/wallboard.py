"""The wallboard: `GET /wallboard` (a static page from the package) and the counts it shows, for `/metrics`.

The page (static/wallboard.js, an ES module on static/shared/session.js, as the console is) signs in with a browser
token, builds its state from `/v1/conferences` and follows `/v1/stream`; it computes its counts in the browser.
`summary` computes the same counts on the server, with the same rules, from the read model, for the
`confctl_wallboard_*` gauges. The rules (both sides):

- live: conferences not completed;
- waiting: a joined customer, not on hold, with no agent or external joined (alone, on wait music);
- on hold: a joined customer on hold (a warm transfer's consult included);
- in transfer: conferences whose transfer is dialing or consulting;
- longest hold: the oldest open hold interval of a joined customer (the timeline's), in seconds;
- transfers completed / failed today: transfers that ended so since 00:00 UTC;
- supervisors listening: joined supervisors (monitor, coach or barge).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from confctl.domain.timeline import timeline
from confctl.entry import pages
from confctl.entry.container import Container
from confctl.service import history

PAGE_LIMIT = 200
MAX_PAGES = 25  # at most 5,000 conferences per status per scrape: a scrape stays bounded whatever the day was
MAX_HOLD_TIMELINES = 200  # conferences whose hold start is read from the log per scrape
# Only these files are served under /wallboard/ (session.js from static/shared/, the console's too).
ASSETS = pages.allow_list(pages.STATIC, ["wallboard.js", "wallboard.css"])

router = APIRouter(include_in_schema=False)  # a page, not an API operation


@router.get("/wallboard")
async def wallboard_page(request: Request) -> HTMLResponse:
    """The wallboard's HTML (it loads its script and style below, and nothing from elsewhere), with the stream
    position it starts from."""
    return await pages.page(request, pages.STATIC / "wallboard.html")


@router.get("/wallboard/{name}")
async def wallboard_asset(name: str) -> FileResponse:
    """The wallboard's module (and the shared one it imports) or its style sheet; anything else is a 404."""
    return pages.allowed_asset(ASSETS, "wallboard", name)


@dataclass(frozen=True, slots=True)
class Counts:
    """What the wallboard shows."""

    live: int = 0
    waiting: int = 0
    on_hold: int = 0
    in_transfer: int = 0
    longest_hold_s: float = 0.0
    transfers_completed: int = 0
    transfers_failed: int = 0
    supervisors: int = 0


def _joined(document: Mapping[str, Any], role: str) -> list[Mapping[str, Any]]:
    return [p for p in document.get("participants", []) if p.get("role") == role and p.get("status") == "joined"]


def held_customers(document: Mapping[str, Any]) -> list[str]:
    """Labels of the joined customers on hold in a live conference."""
    if document.get("status") == "completed":
        return []
    return [p["label"] for p in _joined(document, "customer") if p.get("hold")]


def count(documents: Iterable[Mapping[str, Any]], hold_since: Iterable[datetime], now: datetime) -> Counts:
    """The counts over these conference documents; `hold_since`: when each held customer's hold began."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    live = waiting = on_hold = in_transfer = completed = failed = supervisors = 0
    for document in documents:
        for transfer in document.get("transfers", []):
            ended = transfer.get("ended_at")
            if ended and datetime.fromisoformat(ended) >= day:
                completed += transfer.get("state") == "completed"
                failed += transfer.get("state") == "failed"
        if document.get("status") == "completed":
            continue
        live += 1
        talking = _joined(document, "agent") or _joined(document, "external")
        for customer in _joined(document, "customer"):
            on_hold += bool(customer.get("hold"))
            waiting += not customer.get("hold") and not talking
        in_transfer += any(t.get("state") in ("dialing", "consulting") for t in document.get("transfers", []))
        supervisors += len(_joined(document, "supervisor"))
    starts = list(hold_since)
    longest = max(((now - start).total_seconds() for start in starts), default=0.0)
    return Counts(live, waiting, on_hold, in_transfer, max(longest, 0.0), completed, failed, supervisors)


async def _documents(container: Container, status: str, since: datetime | None) -> list[Mapping[str, Any]]:
    """Conferences of one status, newest first; with `since`, only until one created before it."""
    found: list[Mapping[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await container.read_model.list_documents(status=status, limit=PAGE_LIMIT, cursor=cursor)
        for document in page.items:
            created = document.get("created_at")
            if since is not None and created and datetime.fromisoformat(created) < since:
                return found
            found.append(document)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found


async def _hold_starts(container: Container, document: Mapping[str, Any]) -> list[datetime]:
    """When each held customer's open hold interval began, from the conference's log."""
    held = set(held_customers(document))
    steps = await history.steps(container.store, document["id"])
    return [datetime.fromisoformat(i.from_) for p in timeline(steps) if p.label in held
            for i in p.intervals if i.kind == "hold" and i.to is None]


async def summary(container: Container) -> Counts:
    """The wallboard's counts now, from the read model (and the logs of conferences with a customer on hold)."""
    now = container.clock.now()
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    documents = [*await _documents(container, "init", None), *await _documents(container, "in-progress", None)]
    live_ids = {d["id"] for d in documents}
    documents += [d for d in await _documents(container, "completed", day) if d["id"] not in live_ids]
    starts: list[datetime] = []
    for document in [d for d in documents if held_customers(d)][:MAX_HOLD_TIMELINES]:
        starts += await _hold_starts(container, document)
    return count(documents, starts, now)

