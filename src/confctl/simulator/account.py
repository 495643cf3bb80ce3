"""The simulated account's settings and its alert log (`/simulator/account`, `/simulator/alerts`).

Kept apart from `control.py` (calls, directory, faults): these are what a Twilio project shows in its
Console, the Agent Conference setting and the Debugger's alerts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from confctl.simulator.app import Simulator


class AccountSettings(BaseModel):
    """The account's Console settings that change Twilio's behaviour."""

    # Console > Voice > Settings > Conference: coaching (whisper) works only with Agent Conference on.
    agent_conference: bool = True


class AlertEntry(BaseModel):
    """One Debugger alert: a TwiML step Twilio refused."""

    error_code: int
    call_sid: str
    message: str
    date_created: str = Field(description="RFC 2822, as Twilio writes dates.")
    more_info: str


def build_account_router(simulator: Simulator) -> APIRouter:
    router = APIRouter(prefix="/simulator", tags=["simulator"])
    state = simulator.world.state

    @router.get("/account")
    async def get_account() -> AccountSettings:
        """The account's settings."""
        return AccountSettings(agent_conference=state.agent_conference)

    @router.put("/account")
    async def put_account(body: AccountSettings) -> AccountSettings:
        """Change the account's settings; off, coaching is refused with 16000."""
        state.agent_conference = body.agent_conference
        return AccountSettings(agent_conference=state.agent_conference)

    @router.get("/alerts", response_model=list[AlertEntry])
    async def list_alerts() -> list[dict[str, object]]:
        """Errors of TwiML steps Twilio refused (its Debugger), oldest first."""
        return [alert.as_json() for alert in state.alerts]

    return router
