"""ISO 8601 timer values: dates, durations and repeating cycles, as BPMN timers use them.

- ``timeDate``: an ISO 8601 date or date-time (UTC when no offset is given).
- ``timeDuration``: ``PnYnMnWnDTnHnMnS`` (a year counts 365 days, a month 30).
- ``timeCycle``: ``R[n]/<duration>``, ``R[n]/<start>/<duration>`` or
  ``R[n]/<duration>/<end>``; ``R`` alone repeats without end. Cron cycles are
  refused with a clear error.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bpm.errors import ExpressionError

_DURATION = re.compile(
    r"(?P<sign>-)?P(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)
_UNIT_MS = {
    "years": 365 * 86_400_000,
    "months": 30 * 86_400_000,
    "weeks": 7 * 86_400_000,
    "days": 86_400_000,
    "hours": 3_600_000,
    "minutes": 60_000,
    "seconds": 1000,
}
MAX_MS = 10_000 * 365 * 86_400_000


def is_duration(text: str) -> bool:
    text = text.strip()
    match = _DURATION.fullmatch(text)
    return bool(match) and text.lstrip("-") not in ("P", "PT") and not text.endswith("T")


def duration_ms(text: str) -> int:
    """Milliseconds of an ISO 8601 duration. Raises ExpressionError."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if not match or not is_duration(text):
        raise ExpressionError(f"'{text}' is not an ISO 8601 duration")
    total = 0.0
    for unit, value in match.groupdict().items():
        if unit != "sign" and value:
            total += float(value.replace(",", ".")) * _UNIT_MS[unit]
    if total > MAX_MS:
        raise ExpressionError(f"duration '{text}' is too long")
    return -int(total) if match.group("sign") else int(total)


def date_ms(text: str) -> int:
    """Epoch ms of an ISO 8601 date or date-time. Raises ExpressionError."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ExpressionError(f"'{text}' is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Cycle:
    """A repeating timer: the first due time, the period and how many repeats remain."""

    first_due: int
    period_ms: int
    remaining: int | None  # repeats after the first; None = without end
    end: int | None = None

    def next_after(self, due: int, remaining: int | None) -> tuple[int, int | None] | None:
        """The next (due, remaining) after a firing at ``due``, or None when it is over."""
        if remaining is not None and remaining <= 0:
            return None
        following = due + self.period_ms
        if self.end is not None and following > self.end:
            return None
        return following, (None if remaining is None else remaining - 1)


def parse_cycle(text: str, now_ms: int) -> Cycle:
    """Parse ``R[n]/...`` into a :class:`Cycle` starting from ``now_ms``. Raises ExpressionError."""
    parts = text.strip().split("/")
    if len(parts) < 2 or not parts[0].upper().startswith("R"):
        raise ExpressionError(f"timer cycle '{text}' is not an ISO 8601 repeating interval (cron is not supported)")
    count_text = parts[0][1:]
    if count_text and not count_text.isdigit():
        raise ExpressionError(f"timer cycle '{text}' has a bad repeat count")
    repeats = int(count_text) if count_text else None
    start, end, period = now_ms, None, None
    for part in parts[1:]:
        if is_duration(part):
            period = duration_ms(part)
        elif period is None:
            start = date_ms(part)
        else:
            end = date_ms(part)
    if period is None or period <= 0:
        raise ExpressionError(f"timer cycle '{text}' has no positive period")
    if repeats == 0:
        raise ExpressionError(f"timer cycle '{text}' never fires")
    first = start if start != now_ms else now_ms + period
    return Cycle(first, period, None if repeats is None else repeats - 1, end)


def due_from_value(value: object, now_ms: int) -> int:
    """A due time from a date or duration value (as a template evaluated to)."""
    if isinstance(value, bool):
        raise ExpressionError(f"timer value {value!r} is not a date or duration")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    return now_ms + duration_ms(text) if is_duration(text) else date_ms(text)
