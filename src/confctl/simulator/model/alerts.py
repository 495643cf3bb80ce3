"""Errors Twilio reports out of band: a TwiML step it refused shows in the Debugger, not in an HTTP answer.

Only what the model refuses while running TwiML is logged here (REST refusals are answered inline). The
simulator keeps them as its alert log, read at `/simulator/alerts`, so tests can tell 16023 from 13240.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from confctl.simulator.model.clock import rfc2822

ALERT_LIMIT = 1000  # oldest first out, like the request and callback logs


@dataclass(frozen=True, slots=True)
class Alert:
    """One refused step: Twilio's error code, the call it happened on, and why."""

    error_code: int
    call_sid: str
    message: str
    date_created: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "error_code": self.error_code,
            "call_sid": self.call_sid,
            "message": self.message,
            "date_created": rfc2822(self.date_created),
            "more_info": f"https://www.twilio.com/docs/errors/{self.error_code}",
        }
