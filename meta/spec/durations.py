"""Durations: ``30s``, ``5m``, ``2h``, ``1d``, combinations like ``1h30m``, plain seconds, and ISO-8601."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHORT = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*)+$")
_SHORT_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)

EXPECTED = "a duration like '30s', '5m', '2h', '1d', '1h30m', a number of seconds, or ISO-8601 like 'PT5M'"


def parse_duration(value: object) -> timedelta:
    """Parse a user-written duration; raise ValueError naming the accepted forms."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected {EXPECTED}, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        if _SHORT.match(text):
            return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _SHORT_PART.findall(text)))
        iso = _ISO.match(text.upper())
        if iso and text.upper() not in ("P", "PT") and any(iso.groupdict().values()):
            parts = {k: float(v) for k, v in iso.groupdict().items() if v}
            return timedelta(**parts)
    raise ValueError(f"expected {EXPECTED}, got {value!r}")


def format_duration(value: timedelta) -> str:
    """Shortest exact short form: 300s -> '5m', 5400s -> '1h30m', 0.5s -> '500ms'."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
