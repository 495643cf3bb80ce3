"""`sync`'s corrections (pure) for a leg still dialing here that Twilio no longer lists: gone once its ring
time is over, left alone before (it may have been dialed while Twilio was being read)."""

from __future__ import annotations

from datetime import datetime, timedelta

from confctl.domain import command_events as ce
from confctl.domain import events as ev
from confctl.domain.evolve import fold
from confctl.service.gateway import ConferenceSnapshot, ParticipantSnapshot
from confctl.service.sync import corrections

AT = "2026-12-01T12:00:00+00:00"
CF = "CF" + "1" * 32


def _customer() -> ParticipantSnapshot:
    return ParticipantSnapshot(call_sid="CA1", conference_sid=CF, label="customer", status="connected", muted=False,
                               hold=False, coaching=False, call_sid_to_coach=None, end_conference_on_exit=True,
                               start_conference_on_enter=True)


def test_a_leg_dialing_past_its_ring_time_that_twilio_does_not_list_is_corrected_away() -> None:
    """bob (timeout 10 s) is still dialing here: not listed by Twilio 16 s after the dial, he is gone; at 14 s
    (Twilio may still ring him, within its 5 s buffer) nothing is corrected."""
    state = fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid="CA1", caller="+15550001111", called="+15550002222", record=False,
                             at=AT),
        ev.ParticipantJoined(conference_sid=CF, call_sid="CA1", label="customer", sequence=1, at=AT,
                             flags=ev.ParticipantFlags(end_conference_on_exit=True)),
        ce.ParticipantDialRequested(label="bob", role="agent", to="client:bob", at=AT, timeout_s=10),
        ce.ParticipantDialed(label="bob", call_sid="CA2", at=AT),
    ])
    conference = ConferenceSnapshot(sid=CF, friendly_name="room-CA1", status="in-progress")
    start = datetime.fromisoformat(AT)
    early = (start + timedelta(seconds=14)).isoformat()
    late = (start + timedelta(seconds=16)).isoformat()
    events, notes = corrections(state, conference, [_customer()], early)
    assert [type(e) for e in events] == [ce.ConferenceCorrected] and notes == ["conference status init -> in-progress"]
    events, notes = corrections(state, conference, [_customer()], late)
    assert notes == ["conference status init -> in-progress", "bob is no longer dialing"]
    gone = events[-1]
    assert isinstance(gone, ce.ParticipantCorrected) and (gone.call_sid, gone.present) == ("CA2", False)
