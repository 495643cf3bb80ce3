"""Twilio REST errors as the model raises them; the REST layer renders Twilio's error body."""

from __future__ import annotations


class TwilioApiError(Exception):
    """A refusal Twilio would answer with `{"code", "message", "more_info", "status"}`."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> TwilioApiError:
    """Twilio's 20404 for any unknown resource."""
    return TwilioApiError(404, 20404, f"The requested resource {what} was not found")


def bad_request(code: int, message: str) -> TwilioApiError:
    """A 400 with a specific Twilio error code."""
    return TwilioApiError(400, code, message)
