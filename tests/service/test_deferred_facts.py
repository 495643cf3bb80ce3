"""Deferred facts: kept while the database refuses them, stored in order once it takes them, each key once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from confctl.service.outage import DeferredFacts, DeferredRetry, StoreUnavailable

QUICK = DeferredRetry(initial_s=0.01, max_s=0.02, attempt_s=1.0)


class Database:
    """Refuses the first `refusals` stores with StoreUnavailable, then records what it is given."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.stored: list[str] = []

    def store(self, fact: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if self.refusals > 0:
                self.refusals -= 1
                raise StoreUnavailable("the database did not answer")
            self.stored.append(fact)

        return run


async def until_empty(deferred: DeferredFacts) -> None:
    for _ in range(500):
        if not deferred.pending:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{deferred.pending} facts still waiting after 5 s")


async def test_facts_wait_while_the_database_refuses_them_and_are_stored_in_order_after() -> None:
    """Two facts refused three times are stored once the database takes them, oldest first; the gauge goes
    1, 2 and back to 0."""
    database, seen = Database(refusals=3), list[int]()
    deferred = DeferredFacts(QUICK, on_change=seen.append)
    assert deferred.defer("voice:CA1", database.store("first"))
    assert deferred.defer("voice:CA2", database.store("second"))
    await until_empty(deferred)
    assert database.stored == ["first", "second"]
    assert seen == [1, 2, 1, 0]
    await deferred.aclose()


async def test_a_fact_deferred_twice_is_stored_once() -> None:
    """Twilio repeating its voice request during the outage: the same dedupe key is kept, and stored, once."""
    database = Database(refusals=2)
    deferred = DeferredFacts(QUICK)
    deferred.defer("voice:CA1", database.store("call"))
    deferred.defer("voice:CA1", database.store("call"))
    assert deferred.pending == 1
    await until_empty(deferred)
    assert database.stored == ["call"]
    await deferred.aclose()


async def test_a_fact_that_fails_otherwise_is_dropped_not_retried_forever() -> None:
    """A store failing for another reason than the database's absence is logged and dropped; the next fact
    is still stored."""
    database = Database(refusals=0)

    async def broken() -> None:
        raise ValueError("not a database outage")

    deferred = DeferredFacts(QUICK)
    deferred.defer("voice:CA1", broken)
    deferred.defer("voice:CA2", database.store("next"))
    await until_empty(deferred)
    assert database.stored == ["next"]
    await deferred.aclose()


async def test_closing_makes_one_last_attempt() -> None:
    """On shutdown whatever waits is tried once more (the database may be back by then)."""
    database = Database(refusals=1)
    deferred = DeferredFacts(DeferredRetry(initial_s=60.0, max_s=60.0))
    deferred.defer("voice:CA1", database.store("call"))
    await asyncio.sleep(0.05)  # the first attempt is refused; the next one would be a minute away
    await deferred.aclose()
    assert database.stored == ["call"] and deferred.pending == 0
