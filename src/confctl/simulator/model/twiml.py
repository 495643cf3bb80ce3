"""TwiML parsing: the voice verbs the simulator executes, read with xml.etree and no DTDs.

Only what confctl uses is understood: `<Say>`, `<Play>`, `<Pause>`, `<Hangup>` and `<Dial><Conference>`.
Other verbs are kept as `Unsupported` and skipped, as a lenient stand-in rather than Twilio's error 12100.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# Twilio caps documents well below this; the cap also bounds what a hostile body can cost us.
_MAX_TWIML_BYTES = 64 * 1024
_SPEECH_WORDS_PER_S = 2.5


class TwimlError(ValueError):
    """The document is not TwiML the simulator can run (Twilio: error 12100, call ends)."""


@dataclass(frozen=True, slots=True)
class Say:
    seconds: float


@dataclass(frozen=True, slots=True)
class Play:
    seconds: float


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class DialConference:
    """`<Dial><Conference attrs>name</Conference></Dial>`; attrs keep TwiML's lowerCamel names."""

    name: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unsupported:
    tag: str


Verb = Say | Play | Pause | Hangup | DialConference | Unsupported


def parse_twiml(document: str) -> tuple[Verb, ...]:
    """The verbs of a `<Response>` document, in order."""
    if len(document.encode()) > _MAX_TWIML_BYTES:
        raise TwimlError("TwiML document too large")
    lowered = document.lower()
    # xml.etree resolves no external entities, but internal entity expansion can still blow up:
    # TwiML never needs a DTD, so refuse any.
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise TwimlError("DTDs are not allowed in TwiML")
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise TwimlError(f"invalid XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"root element must be <Response>, not <{root.tag}>")
    return tuple(_verb(element) for element in root)


def _verb(element: ET.Element) -> Verb:
    tag = element.tag
    if tag == "Say":
        words = len((element.text or "").split())
        loops = _int(element.get("loop"), 1) or 1
        return Say(seconds=max(1.0, math.ceil(words / _SPEECH_WORDS_PER_S)) * loops)
    if tag == "Play":
        # The simulator does not download audio: each play counts as one second.
        return Play(seconds=float(_int(element.get("loop"), 1) or 1))
    if tag == "Pause":
        return Pause(seconds=float(_int(element.get("length"), 1)))
    if tag == "Hangup":
        return Hangup()
    if tag == "Dial":
        conference = element.find("Conference")
        if conference is not None:
            return DialConference(name=(conference.text or "").strip(), attrs=dict(conference.attrib))
    return Unsupported(tag=tag)


def _int(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return max(0, int(value))
    except ValueError:
        return default


def twiml_bool(value: str | None, default: bool) -> bool:
    """TwiML booleans are `true`/`false` in any case; anything else keeps the default."""
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return default


def event_list(value: str | None) -> frozenset[str]:
    """Space-separated event keywords (TwiML attributes and REST form values alike)."""
    return frozenset((value or "").split())
