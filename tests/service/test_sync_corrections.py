"""`sync`'s corrections (pure): what Twilio's Participants list says is compared with the folded state."""

from __future__ import annotations

from dataclasses import replace

from confctl.domain import command_events as ce
from confctl.domain import events as ev
from confctl.domain.evolve import evolve, fold
from confctl.service.gateway import ConferenceSnapshot, ParticipantSnapshot
from confctl.service.sync import corrections

AT = "2026-12-01T12:00:00+00:00"
CF = "CF" + "1" * 32


def _leg(call_sid: str, label: str, status: str) -> ParticipantSnapshot:
    return ParticipantSnapshot(call_sid=call_sid, conference_sid=CF, label=label, status=status, muted=False,
                               hold=False, coaching=False, call_sid_to_coach=None, end_conference_on_exit=False,
                               start_conference_on_enter=True)


def test_a_ringing_leg_in_twilios_list_is_not_taken_for_a_joined_one() -> None:
    """Twilio's Participants list holds queued, connecting and ringing legs too: only `connected` ones are in the
    conference, so a ringing target yields no correction (and no early consult)."""
    state = fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid="CA1", caller="+15550001111", called="+15550002222", record=False,
                             at=AT),
        ev.ParticipantJoined(conference_sid=CF, call_sid="CA1", label="customer", sequence=1, at=AT,
                             flags=ev.ParticipantFlags(end_conference_on_exit=False)),
        ev.ConferenceStarted(conference_sid=CF, sequence=2, at=AT),
    ])
    conference = ConferenceSnapshot(sid=CF, friendly_name="room-CA1", status="in-progress")
    customer = _leg("CA1", "customer", "connected")
    for status in ("queued", "connecting", "ringing"):
        events, notes = corrections(state, conference, [customer, _leg("CA9", "bob", status)], AT)
        assert events == [] and notes == [], status
    events, notes = corrections(state, conference, [customer, _leg("CA9", "bob", "connected")], AT)
    assert notes == ["bob is in the conference"]


def test_whom_a_coach_whispers_to_is_compared_and_corrected() -> None:
    """Callbacks never say whom a coach whispers to: Twilio's list does, so a coach switched to another agent
    behind confctl's back is a correction naming that agent, and the same coached call is none."""
    def joined(sid: str, label: str, seq: int, **flags: bool) -> ev.ParticipantJoined:
        return ev.ParticipantJoined(conference_sid=CF, call_sid=sid, label=label, sequence=seq, at=AT,
                                    flags=ev.ParticipantFlags(**flags))  # type: ignore[arg-type]

    state = fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid="CA1", caller="+15550001111", called="+15550002222", record=False,
                             at=AT),
        joined("CA1", "customer", 1), joined("CA2", "alice", 2), joined("CA3", "bob", 3),
        ev.ConferenceStarted(conference_sid=CF, sequence=4, at=AT),
        ce.ParticipantCorrected(call_sid="CA9", label="sue", present=True, after_sequence=4, at=AT,
                                flags=ev.ParticipantFlags(coaching=True, call_sid_to_coach="CA2")),
    ])
    conference = ConferenceSnapshot(sid=CF, friendly_name="room-CA1", status="in-progress")
    legs = [_leg("CA1", "customer", "connected"), _leg("CA2", "alice", "connected"), _leg("CA3", "bob", "connected")]

    def sue(coached: str) -> ParticipantSnapshot:
        return replace(_leg("CA9", "sue", "connected"), coaching=True, call_sid_to_coach=coached)

    assert corrections(state, conference, [*legs, sue("CA2")], AT) == ([], [])
    events, notes = corrections(state, conference, [*legs, sue("CA3")], AT)
    assert notes == ["sue coaches bob"]
    assert [(e.call_sid, e.flags.call_sid_to_coach) for e in events  # type: ignore[attr-defined]
            ] == [("CA9", "CA3")]
    repaired = evolve(state, events[0])  # the correction folds into a state that no longer drifts
    assert corrections(repaired, conference, [*legs, sue("CA3")], AT) == ([], [])
