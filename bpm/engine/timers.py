"""ISO 8601 timer values: dates, durations and repeating cycles, as BPMN timers use them.

- ``timeDate``: an ISO 8601 date or date-time (UTC when no offset is given).
- ``timeDuration``: ``PnYnMnWnDTnHnMnS`` (a year counts 365 days, a month 30).
- ``timeCycle``: ``R[n]/<duration>``, ``R[n]/<start>/<duration>`` or
  ``R[n]/<duration>/<end>``; ``R`` alone repeats without end. Or a Quartz cron
  expression, as Camunda 7 accepts: ``sec min hour day-of-month month
  day-of-week [year]`` (``0 0/5 * * * ?``), evaluated in UTC by croniter after
  translating Quartz's day-of-week numbers (1 = Sunday) and ``nL``; ``LW`` and
  ``L-n`` are refused, as are a day of month and a day of week both given.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from croniter import croniter
from croniter.croniter import CroniterError

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
    period_ms: int  # for a cron cycle: nominal (1), the cron gives each next due
    remaining: int | None  # repeats after the first; None = without end
    end: int | None = None
    cron: str | None = None  # the croniter form of a Quartz cron cycle

    def next_after(self, due: int, remaining: int | None) -> tuple[int, int | None] | None:
        """The next (due, remaining) after a firing at ``due``, or None when it is over."""
        if remaining is not None and remaining <= 0:
            return None
        if self.cron is not None:
            following = cron_next(self.cron, due)
            return None if following is None else (following, None)
        following = due + self.period_ms
        if self.end is not None and following > self.end:
            return None
        return following, (None if remaining is None else remaining - 1)


def parse_cycle(text: str, now_ms: int) -> Cycle:
    """Parse ``R[n]/...`` into a :class:`Cycle` starting from ``now_ms``. Raises ExpressionError."""
    if is_cron(text):
        expression = quartz_to_croniter(text)
        first = cron_next(expression, now_ms)
        if first is None:
            raise ExpressionError(f"cron timer cycle '{text}' never fires")
        return Cycle(first, 1, None, None, expression)
    parts = text.strip().split("/")
    if len(parts) < 2 or not parts[0].upper().startswith("R"):
        raise ExpressionError(
            f"timer cycle '{text}' is neither an ISO 8601 repeating interval (R/PT5M) nor a Quartz cron "
            "expression (0 0/5 * * * ?)"
        )
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


# --- Quartz cron cycles ------------------------------------------------------------

_CRON_FIELDS = ("second", "minute", "hour", "day of month", "month", "day of week", "year")
_MAX_YEARS_BETWEEN = 100


def is_cron(text: str) -> bool:
    """Whether a timer cycle is written as a cron expression (6 or 7 fields) rather than ISO 8601."""
    fields = text.split()
    return len(fields) in (6, 7) and not fields[0].upper().startswith(("R", "P"))


def _quartz_day_of_week(field: str) -> str:
    """Quartz numbers the days 1 (Sunday) to 7; croniter 0 (Sunday) to 6. ``nL`` is croniter's ``L<n-1>``."""

    def day(token: str) -> str:
        if not token.isdigit():
            return token  # a name (MON) or *
        number = int(token)
        if not 1 <= number <= 7:
            raise ExpressionError(f"day of week '{token}' is not 1-7 (Quartz counts 1 = Sunday)")
        return str(number - 1)

    entries = []
    for entry in field.split(","):
        base, slash, step = entry.partition("/")
        if base.upper().endswith("L") and len(base) > 1:
            entries.append("L" + day(base[:-1]))
            continue
        base, hash_, nth = base.partition("#")
        base = "-".join(day(part) for part in base.split("-"))
        entries.append(base + hash_ + nth + slash + step)
    return ",".join(entries)


def quartz_to_croniter(text: str) -> str:
    """The croniter expression (seconds first) of a Quartz cron expression. Raises ExpressionError."""
    fields = text.split()
    if len(fields) not in (6, 7):
        raise ExpressionError(f"cron expression '{text}' needs 6 or 7 fields (seconds first, as Quartz)")
    upper = [f.upper() for f in fields]
    day_of_month, day_of_week = upper[3], upper[5]
    if "LW" in day_of_month or "L-" in day_of_month:
        raise ExpressionError(f"cron expression '{text}': LW and L-n in the day of month are not supported")
    if day_of_month not in ("?", "*") and day_of_week not in ("?", "*"):
        raise ExpressionError(
            f"cron expression '{text}' gives both a day of month and a day of week: put '?' in one of them"
        )
    translated = ["*" if f == "?" else f for f in upper]
    translated[5] = _quartz_day_of_week(translated[5])
    expression = " ".join(translated)
    try:
        croniter(expression, 0, second_at_beginning=True)
    except (CroniterError, ValueError, KeyError, IndexError) as exc:
        raise ExpressionError(f"cron expression '{text}' is not valid: {exc}") from None
    return expression


def cron_next(expression: str, after_ms: int) -> int | None:
    """Epoch ms of the first time after ``after_ms`` that a croniter expression matches (UTC), or None."""
    start = dt.datetime.fromtimestamp(after_ms / 1000, tz=dt.UTC)
    try:
        found = croniter(
            expression, start, second_at_beginning=True, max_years_between_matches=_MAX_YEARS_BETWEEN
        ).get_next(dt.datetime)
    except (CroniterError, ValueError, OverflowError):
        return None
    return int(found.timestamp() * 1000)


def check_timer(kind: str, text: str, now_ms: int) -> None:
    """Deploy-time check of a timer value: ``cycle``, ``date`` or ``duration``. Raises ExpressionError."""
    if kind == "cycle":
        parse_cycle(text, now_ms)
    elif kind == "duration":
        duration_ms(text)
    elif not is_duration(text.strip()):
        date_ms(text)
