"""Twilio-shaped resource identifiers: a two-letter prefix and 32 lowercase hex digits."""

from __future__ import annotations

import random
import re

_SID = re.compile(r"^(AC|CA|CF|RE|PN)[0-9a-fA-F]{32}$")


def new_sid(prefix: str, rng: random.Random) -> str:
    """A fresh SID; the caller's random source keeps a seeded simulator reproducible."""
    return prefix + f"{rng.getrandbits(128):032x}"


def is_sid(value: str, prefix: str) -> bool:
    """Whether `value` looks like a SID of the given kind (used to tell SIDs from labels and names)."""
    return bool(_SID.match(value)) and value.startswith(prefix)
