"""Participant labels: what Twilio refuses is refused here first, as `invalid_label`.

Twilio's rules (errors 16024 on REST, 16023 in TwiML): at most 128 characters, not a CallSid, no `/`, not even
URL-encoded as `%2F`. Twilio's error pages describe a CallSid as "CA" and 32 lowercase hexadecimal digits, while
its REST resources give the CallSid pattern as `^CA[0-9a-fA-F]{32}$`, and a participant path segment of that
shape is read as a CallSid, not a label: so the shape is refused in any case, prefix included.
"""

from __future__ import annotations

import re

from confctl.domain.errors import InvalidLabel

MAX_LABEL = 128
_CALL_SID = re.compile(r"CA[0-9a-f]{32}", re.IGNORECASE)


def label_problem(value: str) -> str | None:
    """Why Twilio would refuse `value` as a participant label; None when it would take it."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_LABEL:
        return f"must be at most {MAX_LABEL} characters"
    if _CALL_SID.fullmatch(value):
        return "must not be shaped like a CallSid (CA and 32 hexadecimal digits)"
    if "/" in value or "%2f" in value.lower():
        return "must not contain '/' (nor '%2F')"
    return None


def check_label(value: str, field: str = "label") -> str:
    """`value` when Twilio would take it as a label, else InvalidLabel naming the field."""
    problem = label_problem(value)
    if problem is not None:
        raise InvalidLabel(f"{field} {problem}")
    return value
