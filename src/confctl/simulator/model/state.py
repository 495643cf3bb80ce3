"""The world's shared state: every resource of the simulated account, the directory and the outbox."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from confctl.simulator.model.alerts import ALERT_LIMIT, Alert
from confctl.simulator.model.clock import Clock
from confctl.simulator.model.effects import Effect
from confctl.simulator.model.records import Call, Conference, DirectoryEntry, Recording

if TYPE_CHECKING:
    from confctl.simulator.model.media import MediaRequest

API_VERSION = "2010-04-01"


@dataclass(slots=True)
class State:
    """Everything the model knows. One account: the simulator stands in for one Twilio project."""

    account_sid: str
    clock: Clock
    rng: random.Random
    default_ring_s: float
    calls: dict[str, Call] = field(default_factory=dict)
    conferences: dict[str, Conference] = field(default_factory=dict)
    recordings: dict[str, Recording] = field(default_factory=dict)
    directory: dict[str, DirectoryEntry] = field(default_factory=dict)
    outbox: list[Effect] = field(default_factory=list)
    # Media fetches on their way (wait and hold music, announcements), by the token their Fetch carries.
    media: dict[int, MediaRequest] = field(default_factory=dict)
    media_tokens: int = 0
    # The account's Agent Conference setting (Console, Voice > Conference settings): coaching needs it.
    agent_conference: bool = True
    alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=ALERT_LIMIT))

    def emit(self, effect: Effect) -> None:
        self.outbox.append(effect)

    def alert(self, error_code: int, call_sid: str, message: str) -> None:
        self.alerts.append(Alert(error_code, call_sid, message, self.now()))

    def now(self) -> datetime:
        return self.clock.now()

    def elapsed(self) -> float:
        return self.clock.elapsed()

    def live_conference_named(self, friendly_name: str) -> Conference | None:
        """The not-yet-completed conference with this name (Twilio allows one live room per name)."""
        for conference in self.conferences.values():
            if conference.friendly_name == friendly_name and conference.status != "completed":
                return conference
        return None

    def newest_conference_named(self, friendly_name: str) -> Conference | None:
        found: Conference | None = None
        for conference in self.conferences.values():  # insertion order: the last match is the newest
            if conference.friendly_name == friendly_name:
                found = conference
        return found
