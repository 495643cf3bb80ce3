"""Fault injection: REST errors; dropped, duplicated, reordered, delayed, concurrent and early callbacks.

Every random choice comes from one seeded RNG.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Faults:
    """The current fault settings (`PUT /simulator/faults`); all off by default."""

    rest_error_rate: float = 0.0
    rest_error_status: int = 500
    callback_duplicate_rate: float = 0.0
    callback_drop_rate: float = 0.0  # a callback is not delivered at all (no attempt, no retry)
    callback_reorder: bool = False
    callback_delay_ms: float = 0.0
    callback_concurrency: int = 1  # webhooks in flight at once; 1: one after another, in order
    callback_early: bool = False  # callbacks may reach the receiver before the REST answer that caused them
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random)

    def reseed(self) -> None:
        self.rng = random.Random(self.seed)

    def rest_error(self) -> bool:
        return self.rest_error_rate > 0 and self.rng.random() < self.rest_error_rate

    def duplicate(self) -> bool:
        return self.callback_duplicate_rate > 0 and self.rng.random() < self.callback_duplicate_rate

    def drop(self) -> bool:
        return self.callback_drop_rate > 0 and self.rng.random() < self.callback_drop_rate

    def as_json(self) -> dict[str, object]:
        return {
            "rest_error_rate": self.rest_error_rate,
            "rest_error_status": self.rest_error_status,
            "callback_duplicate_rate": self.callback_duplicate_rate,
            "callback_drop_rate": self.callback_drop_rate,
            "callback_reorder": self.callback_reorder,
            "callback_delay_ms": self.callback_delay_ms,
            "callback_concurrency": self.callback_concurrency,
            "callback_early": self.callback_early,
            "seed": self.seed,
        }
