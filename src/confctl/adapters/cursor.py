"""Opaque keyset cursors for paging conferences newest first: (created_at, id), the same for every store."""

from __future__ import annotations

import base64
import json
from datetime import datetime


def encode_cursor(created_at: datetime, stream_id: str) -> str:
    """An opaque cursor for (created_at, id) keyset paging."""
    raw = json.dumps([created_at.isoformat(), stream_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after; ValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, stream_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(stream_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
