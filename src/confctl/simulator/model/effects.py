"""What the model asks the outside world to do; the runtime carries these out.

The model never performs I/O: it appends effects to an outbox that the runtime drains after each
operation. Timers carry the model function to run when they fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Callback:
    """An asynchronous webhook Twilio sends (call status, conference status, recording status)."""

    kind: str  # "call-status" | "conference-status" | "recording-status"
    url: str
    method: str
    params: Params


@dataclass(frozen=True, slots=True)
class Fetch:
    """A request whose answer goes back to the model: a call's TwiML (`voice`, through `World.twiml_fetched`),
    or the audio Twilio plays into a conference (`wait`, `hold`, `announce`, through `World.media_fetched`).

    `call_sid` is the call the fetch is for (a conference announcement's is the ConferenceSid); `program_id`
    tells a stale answer from the current one (for media, the request's token in `State.media`).
    """

    call_sid: str
    program_id: int
    url: str
    method: str
    params: Params
    kind: str = "voice"  # voice | wait | hold | announce


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Run `action` after `delay_s` simulated seconds unless cancelled by `key` first."""

    key: str
    delay_s: float
    action: Callable[[], None]


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget a pending timer (e.g. the ring timeout once the call is answered)."""

    key: str


Effect = Callback | Fetch | StartTimer | CancelTimer
