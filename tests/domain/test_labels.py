"""Labels Twilio would refuse (16024 / 16023) are refused by the domain as invalid_label, before anything is stored."""

from __future__ import annotations

import pytest

from confctl.domain import commands as cmd
from confctl.domain import errors as de
from confctl.domain import events as ev
from confctl.domain import transfers as tr
from confctl.domain.evolve import fold
from confctl.domain.labels import MAX_LABEL, check_label, label_problem
from confctl.domain.model import Conference

AT = "2026-11-25T12:00:00+00:00"
HEX = "0123456789abcdef" * 2

BAD = [
    pytest.param("x" * (MAX_LABEL + 1), id="129 characters"),
    pytest.param("CA" + HEX, id="a CallSid"),
    pytest.param("CA" + HEX.upper(), id="a CallSid in upper case"),
    pytest.param("ca" + HEX, id="a CallSid with a lower-case prefix"),
    pytest.param("team/a", id="slash"),
    pytest.param("team%2Fa", id="%2F"),
    pytest.param("team%2fa", id="%2f"),
    pytest.param("", id="empty"),
]
GOOD = ["x" * MAX_LABEL, "agent-alice", "CA-not-a-sid", "CA" + HEX[:-1], "CA" + HEX + "0", "team%20a", "supervisor-1"]


@pytest.mark.parametrize("label", BAD)
def test_labels_twilio_refuses_are_invalid(label: str) -> None:
    """Over 128 characters, CallSid-shaped (any case), or with `/` or `%2F` (any case): InvalidLabel."""
    assert label_problem(label) is not None
    with pytest.raises(de.InvalidLabel) as raised:
        check_label(label)
    assert raised.value.code == "invalid_label"


@pytest.mark.parametrize("label", GOOD)
def test_labels_twilio_takes_are_valid(label: str) -> None:
    """128 characters, near-misses of a CallSid and other percent escapes are fine."""
    assert check_label(label) == label


def live_call() -> Conference:
    return fold("room-CA1", [
        ev.ConferenceCreated(customer_call_sid="CA1", caller="+15550001111", called="+15550002222", record=False,
                             at=AT),
        ev.ParticipantJoined(conference_sid="CF1", call_sid="CA1", label="customer", sequence=1, at=AT,
                             flags=ev.ParticipantFlags(end_conference_on_exit=True)),
        ev.ParticipantJoined(conference_sid="CF1", call_sid="CA2", label="agent-a", sequence=2, at=AT,
                             flags=ev.ParticipantFlags()),
        ev.ConferenceStarted(conference_sid="CF1", sequence=3, at=AT),
    ])


@pytest.mark.parametrize("label", BAD[:-1])
def test_a_participant_or_transfer_label_twilio_refuses_is_refused_by_the_command(label: str) -> None:
    """Adding a participant or starting a transfer under such a label: InvalidLabel, nothing planned."""
    state = live_call()
    with pytest.raises(de.InvalidLabel):
        cmd.plan_add(state, cmd.AddParticipant(to="client:b", role="agent", label=label), AT)
    with pytest.raises(de.InvalidLabel):
        tr.plan_transfer(state, tr.StartTransfer(kind="warm", from_label="agent-a", to="client:b", label=label), "t1",
                         AT, None)


def test_the_labels_confctl_makes_up_are_valid() -> None:
    """`{role}-{n}` for every role is a label Twilio takes."""
    for role in ("agent", "supervisor", "external", "agent-fallback"):
        assert label_problem(cmd.free_label(live_call(), None, role)) is None
