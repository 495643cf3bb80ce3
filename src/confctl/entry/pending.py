"""What is still to be done at Twilio, added to the conference and transfer documents the read API answers.

The stored state says what should be (the customer off hold, `from` gone); the outbox says which of the Twilio
requests that make it so are not done yet: while Twilio cannot be reached they are retried with backoff, and a
reader sees them here instead of a state that silently disagrees with Twilio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confctl.entry.container import Container
from confctl.service.ports import UnfinishedEffect


def _effect(u: UnfinishedEffect) -> dict[str, Any]:
    return {"kind": u.kind, "label": u.label, "transfer_id": u.transfer_id, "attempts": u.attempts,
            "last_error": u.error, "next_attempt_at": u.due_at.isoformat() if u.attempts else None}


async def with_pending(container: Container, documents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conference documents with `pending_effects`, and `pending` on each of their transfers."""
    if container.outbox is None or not documents:
        return list(documents)
    unfinished = await container.outbox.unfinished([d["id"] for d in documents])
    by_conference: dict[str, list[UnfinishedEffect]] = {}
    for u in unfinished:
        by_conference.setdefault(u.stream_id, []).append(u)
    out = []
    for document in documents:
        mine = by_conference.get(document["id"], [])
        busy = {u.transfer_id for u in mine}
        out.append({**document, "pending_effects": [_effect(u) for u in mine],
                    "transfers": [{**t, "pending": t["id"] in busy} for t in document.get("transfers", [])]})
    return out


async def transfer_with_pending(container: Container, transfer: dict[str, Any]) -> dict[str, Any]:
    """A transfer document with `pending`."""
    if container.outbox is None:
        return transfer
    unfinished = await container.outbox.unfinished([transfer["conference_id"]])
    return {**transfer, "pending": any(u.transfer_id == transfer["id"] for u in unfinished)}
