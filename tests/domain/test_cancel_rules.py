"""Cancelling a transfer: only while `from` is there to take the customer back (pure: no I/O)."""

from __future__ import annotations

import pytest

from confctl.domain import command_events as ce
from confctl.domain import errors as de
from confctl.domain import transfers as tr
from confctl.domain.effects import Update
from tests.domain.test_commands_and_transfers import AT, apply, left, live_call


def test_a_cold_transfer_cannot_be_cancelled_once_from_is_leaving() -> None:
    """A cold transfer drops `from` at once: a cancel would leave the customer alone on hold music, so it is
    invalid_transition, before and after the kick landed."""
    state = live_call()
    plan = tr.plan_transfer(state, tr.StartTransfer(kind="cold", from_label="agent-a", to="client:b"), "TR1", AT,
                            None)
    state = apply(state, plan.events)
    with pytest.raises(de.InvalidTransition):
        tr.plan_cancel(state, "TR1", AT)
    state = apply(state, [left("CA2", "agent-a", 7)])
    with pytest.raises(de.InvalidTransition):
        tr.plan_cancel(state, "TR1", AT)


def test_a_warm_cancel_unholds_the_customer_and_names_its_transfer() -> None:
    """A warm cancel while dialing takes the customer off hold; its plan carries the transfer id (its pending
    steps are shown on the transfer)."""
    state = live_call()
    started = tr.plan_transfer(state, tr.StartTransfer(kind="warm", from_label="agent-a", to="client:b"), "TR1",
                               AT, None)
    state = apply(state, started.events)
    cancel = tr.plan_cancel(state, "TR1", AT)
    assert cancel.transfer_id == "TR1"
    assert cancel.events == [ce.TransferCancelled(transfer_id="TR1", at=AT, reason="cancelled")]
    assert cancel.effects == [Update("customer", "CA1", hold=False)]
