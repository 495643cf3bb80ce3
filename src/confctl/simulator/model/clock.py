"""Time as the model sees it: wall-clock timestamps plus simulated elapsed seconds.

Timestamps (`date_created`, callback `Timestamp`) follow the wall clock so they make sense next to the
service's own clock; durations follow simulated time, so a test that runs 100x faster still sees a call
last the number of seconds it was meant to.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol


class Clock(Protocol):
    """What the model needs to know about time."""

    def now(self) -> datetime:
        """The current wall-clock time (aware, UTC)."""
        ...

    def elapsed(self) -> float:
        """Simulated seconds since an arbitrary origin (monotonic)."""
        ...


class ScaledClock:
    """Wall clock for timestamps; monotonic time divided by the time scale for durations."""

    def __init__(self, time_scale: float) -> None:
        self._scale = time_scale
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def elapsed(self) -> float:
        real = time.monotonic() - self._origin
        return real / self._scale if self._scale > 0 else 0.0


def rfc2822(moment: datetime) -> str:
    """Twilio's date format, e.g. `Fri, 20 Aug 2010 01:13:42 +0000`."""
    return format_datetime(moment.astimezone(UTC))
