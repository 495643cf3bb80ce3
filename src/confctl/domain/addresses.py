"""Dialable addresses (API.md §4): E.164 numbers, `client:NAME`, `sip:USER@HOST`; anything else is refused."""

from __future__ import annotations

import re

from confctl.domain.errors import InvalidAddress

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CLIENT = re.compile(r"^client:[A-Za-z0-9_.\-]{1,121}$")
_SIP = re.compile(r"^sip:[A-Za-z0-9_.!~*'()&=+$,;?/%\-]+@[A-Za-z0-9.\-]+(:\d{1,5})?(;[A-Za-z0-9=_.\-]+)*$")


def is_address(value: str) -> bool:
    """Whether Twilio can dial `value` as a participant."""
    return bool(_E164.match(value) or _CLIENT.match(value) or _SIP.match(value))


def check_address(value: str, field: str = "to") -> str:
    """`value` when dialable, else InvalidAddress naming the field."""
    if not is_address(value):
        raise InvalidAddress(f"{field} must be an E.164 number (+15551234567), client:NAME or sip:USER@HOST")
    return value
