"""Form and query parameters as Twilio reads them: PascalCase names, `true`/`false`, repeated list keys.

List fields are accepted both as repeated keys (twilio-python) and space-separated (Twilio's docs).
Unknown names are ignored: twilio-python 9.13 sends parameters this API version does not define.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from confctl.simulator.model.errors import bad_request
from confctl.simulator.model.records import CallbackTarget


class Form:
    """The parameters of one request, in arrival order."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    @classmethod
    def parse(cls, encoded: str) -> Form:
        return cls(parse_qsl(encoded, keep_blank_values=True))

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.pairs if key == name), None)

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.pairs)

    def require(self, name: str, code: int) -> str:
        value = self.get(name)
        if not value:
            raise bad_request(code, f"Required parameter {name} missing.")
        return value

    def bool(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise bad_request(20001, f"Invalid value {value!r} for {name}: expected true or false")
        return lowered == "true"

    def int(self, name: str) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise bad_request(20001, f"Invalid value {value!r} for {name}: expected an integer") from None

    def words(self, name: str) -> frozenset[str] | None:
        """A list field: every value of every repeat, each split on spaces; None when absent."""
        values = [value for key, value in self.pairs if key == name]
        if not values:
            return None
        return frozenset(word for value in values for word in value.split())

    def callback(self, prefix: str, default_events: frozenset[str]) -> CallbackTarget:
        """`{prefix}`, `{prefix}Method` and `{prefix}Event` as one callback setting."""
        return CallbackTarget(
            url=self.get(prefix) or None,
            method=(self.get(f"{prefix}Method") or "POST").upper(),
            events=self.words(f"{prefix}Event") or default_events,
        )

    def as_lists(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for key, value in self.pairs:
            grouped.setdefault(key, []).append(value)
        return grouped
