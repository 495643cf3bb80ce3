"""Twilio refusals as problems: a coaching precondition lost to a race keeps its own code, and an account setting
the operator must change says so."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from confctl.entry.errors import install
from confctl.service.gateway import TwilioError


def app_refused_with(code: int, message: str) -> FastAPI:
    """An app whose one route meets Twilio's refusal, answered by confctl's own error handlers."""
    app = FastAPI()
    install(app)

    @app.get("/refused")
    async def refused() -> None:
        raise TwilioError(400, code, message)

    return app


@pytest.mark.parametrize(("code", "status", "problem", "says"), [
    pytest.param(16027, 409, "coach_target_on_hold", "on hold", id="16027"),
    pytest.param(16000, 502, "twilio_error", "enable Agent Conference in the Twilio Console", id="16000"),
    pytest.param(16028, 502, "twilio_error", "16028", id="other codes"),
])
async def test_twilio_refusals_map_to_their_problem(code: int, status: int, problem: str, says: str) -> None:
    """16027 (the agent was held after confctl checked) is 409 coach_target_on_hold; 16000 is a twilio_error
    that tells the operator what to enable; every one keeps Twilio's code."""
    transport = httpx.ASGITransport(app=app_refused_with(code, f"Twilio says {code}: on hold"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/refused")
    assert response.status_code == status
    body = response.json()
    assert (body["code"], body["twilio_code"], body["twilio_status"]) == (problem, code, 400)
    assert says in body["detail"] and f"Twilio error {code}" in body["detail"]
