"""The pure model on its own: no event loop, no HTTP; timers are run by hand in due order."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from confctl.simulator.model.audibility import audibility
from confctl.simulator.model.effects import Callback, CancelTimer, Effect, Fetch, StartTimer
from confctl.simulator.model.participants import ParticipantChanges
from confctl.simulator.model.records import CallbackTarget, ConferenceSettings, ParticipantOptions
from confctl.simulator.model.world import ParticipantRequest, World


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(1_700_000_000 + self.t, UTC)

    def elapsed(self) -> float:
        return self.t


def run_until_quiet(world: World, clock: FakeClock) -> list[Effect]:
    """Fire due timers in time order, advancing the fake clock; return every other effect."""
    pending: dict[str, tuple[float, StartTimer]] = {}
    out: list[Effect] = []
    while True:
        for effect in world.drain():
            if isinstance(effect, StartTimer):
                pending[effect.key] = (clock.t + effect.delay_s, effect)
            elif isinstance(effect, CancelTimer):
                pending.pop(effect.key, None)
            else:
                out.append(effect)
        if not pending:
            return out
        key, (due, timer) = min(pending.items(), key=lambda item: item[1][0])
        del pending[key]
        clock.t = max(clock.t, due)
        timer.action()


def _request(label: str, **options: object) -> ParticipantRequest:
    return ParticipantRequest(
        to=f"client:{label}",
        from_="+15550000",
        options=ParticipantOptions(label=label, **options),  # type: ignore[arg-type]
        settings=ConferenceSettings(status_callback=CallbackTarget("http://cb", "POST", frozenset({"join"}))),
        callback=CallbackTarget(),
    )


def test_participants_join_after_ringing_and_coaching_is_heard_by_one() -> None:
    """Two dialed legs ring for the default time, join and start the room; a coach is heard by its target only."""
    clock = FakeClock()
    world = World("AC" + "0" * 32, clock, random.Random(1), default_ring_s=2.0)
    agent = world.create_participant("room", _request("agent"))
    world.create_participant("room", _request("customer"))
    effects = run_until_quiet(world, clock)
    assert clock.t == 2.0
    joins = [dict(e.params)["ParticipantLabel"] for e in effects if isinstance(e, Callback)]
    assert joins == ["agent", "customer"]
    conference = world.conference("room")
    assert conference.status == "in-progress"
    world.create_participant("room", _request("sup", coaching=True, call_sid_to_coach=agent.call_sid))
    run_until_quiet(world, clock)
    assert audibility(conference).hears == {
        "agent": ["customer", "sup"],
        "customer": ["agent"],
        "sup": ["agent", "customer"],
    }
    world.update_participant(conference.sid, "sup", ParticipantChanges(coaching=False))
    assert audibility(conference).hears["customer"] == ["agent", "sup"]
    assert not [e for e in world.drain() if isinstance(e, Fetch)]
