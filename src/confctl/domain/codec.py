"""Events to and from JSON-ready dicts, by their stable `type` string (pure, stdlib only).

Decoding ignores fields it does not know and fills missing ones from defaults, so old logs replay under new
code; a type it does not know becomes an `UnknownEvent` that still counts as a version.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from confctl.domain.events import EVENT_TYPES, DomainEvent


@dataclass(frozen=True, slots=True)
class UnknownEvent(DomainEvent):
    """An event whose type this version of confctl does not know (written by a newer one)."""

    type: ClassVar[str] = "unknown"
    stored_type: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


def encode(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    """(type, data) of an event."""
    if isinstance(event, UnknownEvent):
        return event.stored_type, dict(event.data)
    data: dict[str, Any] = _plain(event)
    return event.type, data


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """JSON-ready data of a value: `dataclasses.asdict` without its deep copies (events hold immutable values),
    which made it the costliest step of storing a callback."""
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(value):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# Per class, once: each field's name, the dataclass it holds, if any (`X` or `X | None`), and whether it holds
# a tuple (JSON gives a list back). Working this out per event was a third of the time of decoding a log.
_Fields = tuple[tuple[str, "type[Any] | None", bool], ...]
_FIELDS: dict[type[Any], _Fields] = {}


def _fields(cls: type[Any]) -> _Fields:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _FIELDS[cls] = tuple((f.name, _dataclass_in(hints.get(f.name)), _tuple_in(hints.get(f.name)))
                                     for f in dataclasses.fields(cls))
    return found


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for name, nested, is_tuple in _FIELDS.get(cls) or _fields(cls):
        if name in data:
            value = data[name]
            if nested is not None and isinstance(value, Mapping):
                value = _build(nested, value)
            elif is_tuple and isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
    return cls(**kwargs)


def _tuple_in(hint: Any) -> bool:
    """Whether a field holds a tuple (`tuple[...]` or `tuple[...] | None`)."""
    return any(typing.get_origin(c) is tuple for c in (hint, *typing.get_args(hint)))


def _dataclass_in(hint: Any) -> type[Any] | None:
    """The dataclass a field holds (`X` or `X | None`), if any."""
    candidates = typing.get_args(hint) or (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def decode(event_type: str, data: Mapping[str, Any]) -> DomainEvent:
    """The event stored as (type, data)."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        return UnknownEvent(stored_type=event_type, data=dict(data))
    result: DomainEvent = _build(cls, data)
    return result
