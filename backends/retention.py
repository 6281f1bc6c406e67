"""How long ended instances are kept, and how much history each keeps.

``BPM_RETENTION`` (default ``30d``): an ended instance, with its tasks, external
tasks and history, is removed that long after it ends (Redis: EXPIRE set by the
script that ends it; memory: swept). ``90s``, ``15m``, ``12h``, ``30d``, ISO 8601
``P30D`` / ``PT12H`` / ``P1DT2H``, or ``forever``.

``BPM_HISTORY_LIMIT`` (default 1000): entries kept per instance; past it the
oldest *element* entry (one the engine wrote, with ``elementType``) is dropped,
audit entries (claim, complete, assign ...) are kept, and the instance is marked
``history_truncated``. ``0`` or ``none``: no limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_RETENTION = "30d"
DEFAULT_HISTORY_LIMIT = 1000
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_ISO = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def parse_retention(text: str | int | None) -> int | None:
    """Milliseconds to keep an ended instance, or None for ``forever``. ValueError otherwise."""
    if text is None:
        text = DEFAULT_RETENTION
    if isinstance(text, int):
        return text * 1000
    raw = text.strip()
    if raw.lower() in ("forever", "never", "none", "off"):
        return None
    simple = re.fullmatch(r"(\d+)\s*([smhdw]?)", raw.lower())
    if simple:
        return int(simple.group(1)) * _UNITS[simple.group(2) or "s"]
    iso = _ISO.fullmatch(raw.upper())
    if iso and raw.upper() not in ("P", "PT") and not raw.upper().endswith("T"):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        return ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    raise ValueError(f"BPM_RETENTION must be like 90s, 12h, 30d, P30D or forever, not {text!r}")


def parse_history_limit(value: str | int | None) -> int | None:
    """The number of history entries kept per instance, or None for no limit."""
    if value is None:
        return DEFAULT_HISTORY_LIMIT
    if isinstance(value, str) and value.strip().lower() in ("none", "off", "unlimited"):
        return None
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"BPM_HISTORY_LIMIT must be a whole number, not {value!r}") from None
    if limit < 0:
        raise ValueError(f"BPM_HISTORY_LIMIT must not be negative, not {limit}")
    return limit or None


def is_element_entry(entry: Mapping[str, Any]) -> bool:
    """An entry the engine wrote for an element (dropped first past the history limit)."""
    return "elementType" in entry


def append_capped(history: list[dict[str, Any]], entries: list[dict[str, Any]], limit: int | None) -> bool:
    """Append ``entries`` to ``history`` keeping at most ``limit`` (dropping the oldest element
    entries, never audit entries); True when something was dropped."""
    dropped = False
    for entry in entries:
        history.append(entry)
        if limit is not None and len(history) > limit:
            oldest = next((i for i, old in enumerate(history) if is_element_entry(old)), None)
            if oldest is not None:
                del history[oldest]
                dropped = True
    return dropped
