"""Dates, date-times and durations of the vendors' expression libraries.

Camunda/JUEL's ``dateTime()`` and ``now()`` give a Joda-like date-time with
``plusDays(n)``, ``minusHours(n)``, ``withTime(h, m, s, ms)``, ``toDate()``,
``toString(pattern)`` ...; FEEL has ``now()``, ``today()``, ``date("...")``,
``date and time("...")`` and ``duration("P1D")`` with ``+``/``-`` and
comparisons. All times are UTC (Camunda uses the JVM's zone, FEEL the local
one). A value leaving the evaluator becomes ISO 8601 text
(``2026-12-06T13:00:00.000Z``, ``2026-12-06``, ``P1D``), which due dates and
timers accept. The clock is the system's unless :func:`use_clock` sets one.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Final

from bpm.expressions.faults import _Fault

_MAX_TEXT: Final = 64
_MAX_PATTERN: Final = 100
_MAX_AMOUNT: Final = 10**7
_UTC: Final = dt.UTC


@dataclass(frozen=True, slots=True, order=True)
class DateTimeValue:
    """An instant (aware, UTC): Joda's DateTime, java.util.Date and FEEL's date and time."""

    moment: dt.datetime

    def __str__(self) -> str:
        return self.moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True, order=True)
class DateValue:
    """A calendar date without time: FEEL's date."""

    day: dt.date

    def __str__(self) -> str:
        return self.day.isoformat()


@dataclass(frozen=True, slots=True)
class DurationValue:
    """An ISO 8601 duration: calendar months (years-months) plus an exact span (days-time)."""

    months: int
    span: dt.timedelta

    def __str__(self) -> str:
        return _duration_text(self)


Temporal = DateTimeValue | DateValue | DurationValue
TEMPORAL_TYPES: Final = (DateTimeValue, DateValue, DurationValue)


def is_temporal(value: Any) -> bool:
    return isinstance(value, TEMPORAL_TYPES)


def temporal_kind(value: Any) -> str:
    if isinstance(value, DateTimeValue):
        return "date-time"
    return "date" if isinstance(value, DateValue) else "duration"


# --------------------------------------------------------------------------- clock

_CLOCK: ContextVar[Callable[[], dt.datetime] | None] = ContextVar("bpm_expression_clock", default=None)


@contextmanager
def use_clock(now: int | dt.datetime | Callable[[], dt.datetime]) -> Iterator[None]:
    """Evaluate ``now()``/``today()``/``dateTime()`` at this time (epoch ms, a datetime or a function)."""
    token = set_clock(now)
    try:
        yield
    finally:
        _CLOCK.reset(token)


class _FixedClock:
    """The time ``now`` epoch ms, as a datetime made on first use (most steps never read it)."""

    __slots__ = ("moment", "ms")

    def __init__(self, ms: int) -> None:
        self.ms = ms
        self.moment: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        if self.moment is None:
            self.moment = dt.datetime.fromtimestamp(self.ms / 1000, _UTC)
        return self.moment


def set_clock(now: int | dt.datetime | Callable[[], dt.datetime]) -> Token[Callable[[], dt.datetime] | None]:
    """:func:`use_clock` without the block: the token to pass to :func:`reset_clock`."""
    clock: Callable[[], dt.datetime]
    if isinstance(now, int):
        clock = _FixedClock(now)
    elif isinstance(now, dt.datetime):
        clock = lambda: now  # noqa: E731
    else:
        clock = now
    return _CLOCK.set(clock)


def fixed_now_ms() -> int | None:
    """The epoch ms of the clock :func:`set_clock` set from a time, if one is in effect (else None)."""
    clock = _CLOCK.get()
    return clock.ms if type(clock) is _FixedClock else None


def reset_clock(token: Token[Callable[[], dt.datetime] | None]) -> None:
    _CLOCK.reset(token)


def _now() -> dt.datetime:
    clock = _CLOCK.get()
    moment = clock() if clock is not None else dt.datetime.now(_UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_UTC)


# --------------------------------------------------------------------------- parsing

_DURATION_RE: Final = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?"
)


def _text_argument(name: str, text: Any) -> str:
    if not isinstance(text, str):
        raise _Fault(f"'{name}' needs a string, not a {type(text).__name__}")
    if len(text) > _MAX_TEXT:
        raise _Fault(f"'{name}' accepts at most {_MAX_TEXT} characters")
    return text.strip()


def parse_date_time(text: Any, name: str = "date and time") -> DateTimeValue:
    """An ISO 8601 date-time (``Z``/offset or none = UTC); a plain date is its start of day."""
    raw = _text_argument(name, text)
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Fault(f"'{name}' cannot read {raw!r} as an ISO 8601 date-time") from None
    return DateTimeValue(moment if moment.tzinfo is not None else moment.replace(tzinfo=_UTC))


def parse_date(text: Any) -> DateValue:
    raw = _text_argument("date", text)
    try:
        return DateValue(dt.date.fromisoformat(raw))
    except ValueError:
        raise _Fault(f"'date' cannot read {raw!r} as an ISO 8601 date") from None


def parse_duration(text: Any) -> DurationValue:
    raw = _text_argument("duration", text)
    match = _DURATION_RE.fullmatch(raw)
    if match is None or raw.rstrip("T").endswith("P") or raw.endswith("T"):
        raise _Fault(f"'duration' cannot read {raw!r} as an ISO 8601 duration")
    sign, years, months, weeks, days, hours, minutes, seconds = match.groups()
    total_months = int(years or 0) * 12 + int(months or 0)
    try:
        span = dt.timedelta(
            weeks=int(weeks or 0),
            days=int(days or 0),
            hours=int(hours or 0),
            minutes=int(minutes or 0),
            seconds=float(seconds or 0),
        )
    except OverflowError:
        raise _Fault(f"duration {raw!r} is too long") from None
    return DurationValue(-total_months, -span) if sign else DurationValue(total_months, span)


def _duration_text(value: DurationValue) -> str:
    months, span = value.months, value.span
    negative = months < 0 or (months == 0 and span < dt.timedelta(0))
    if negative:
        months, span = -months, -span
    text = "-P" if negative else "P"
    years, months = divmod(months, 12)
    text += (f"{years}Y" if years else "") + (f"{months}M" if months else "")
    if span.days:
        text += f"{span.days}D"
    hours, rest = divmod(span.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or span.microseconds:
        whole = f"{seconds + span.microseconds / 1_000_000:.3f}".rstrip("0").rstrip(".")
        clock += f"{whole}S"
    text += f"T{clock}" if clock else ""
    return text if text not in ("P", "-P") else "PT0S"


# --------------------------------------------------------------------------- arithmetic


def _add_months(moment: dt.datetime | dt.date, months: int) -> Any:
    """Calendar months, clamping the day to the month's end as Joda and FEEL do."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise _Fault("date is out of range (years 1 to 9999)")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _shift(value: DateTimeValue | DateValue, duration: DurationValue, sign: int) -> Temporal:
    try:
        if isinstance(value, DateValue):
            day = _add_months(value.day, sign * duration.months) + sign * dt.timedelta(days=duration.span.days)
            return DateValue(day)
        return DateTimeValue(_add_months(value.moment, sign * duration.months) + sign * duration.span)
    except OverflowError:
        raise _Fault("date is out of range (years 1 to 9999)") from None


def temporal_add(left: Any, right: Any) -> Temporal | None:
    """``left + right`` for dates, date-times and durations; None when neither side is one."""
    if isinstance(left, DurationValue) and isinstance(right, DateTimeValue | DateValue):
        left, right = right, left
    if isinstance(left, DateTimeValue | DateValue) and isinstance(right, DurationValue):
        return _shift(left, right, 1)
    if isinstance(left, DurationValue) and isinstance(right, DurationValue):
        return DurationValue(left.months + right.months, left.span + right.span)
    if is_temporal(left) or is_temporal(right):
        raise _Fault(f"cannot add a {_kind(left)} and a {_kind(right)}")
    return None


def temporal_subtract(left: Any, right: Any) -> Temporal | None:
    if isinstance(left, DateTimeValue | DateValue) and isinstance(right, DurationValue):
        return _shift(left, right, -1)
    if isinstance(left, DateTimeValue) and isinstance(right, DateTimeValue):
        return DurationValue(0, left.moment - right.moment)
    if isinstance(left, DateValue) and isinstance(right, DateValue):
        return DurationValue(0, left.day - right.day)
    if isinstance(left, DurationValue) and isinstance(right, DurationValue):
        return DurationValue(left.months - right.months, left.span - right.span)
    if is_temporal(left) or is_temporal(right):
        raise _Fault(f"cannot subtract a {_kind(right)} from a {_kind(left)}")
    return None


def temporal_key(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Comparable keys of two temporal values of one kind (None if they are not both temporal)."""
    if not (is_temporal(left) and is_temporal(right)):
        return None
    if type(left) is not type(right):
        raise _Fault(f"cannot compare a {_kind(left)} and a {_kind(right)}")
    if isinstance(left, DurationValue) and isinstance(right, DurationValue):
        if (left.months and (right.span or left.span)) or (right.months and (left.span or right.span)):
            raise _Fault("cannot order a years-months duration and a days-time duration")
        return (left.months, left.span), (right.months, right.span)
    return left, right


def _kind(value: Any) -> str:
    """The kind of a value for messages (as :func:`bpm.expressions.values._kind`, which imports this module)."""
    if is_temporal(value):
        return temporal_kind(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    if isinstance(value, int | float):
        return "number"
    kinds = ((str, "string"), (list | tuple, "list"), (Mapping, "map"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


# --------------------------------------------------------------------------- Joda-like methods

_UNITS: Final = {
    "Years": (12, None),
    "Months": (1, None),
    "Weeks": (0, "weeks"),
    "Days": (0, "days"),
    "Hours": (0, "hours"),
    "Minutes": (0, "minutes"),
    "Seconds": (0, "seconds"),
    "Millis": (0, "milliseconds"),
}


def _amount(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _MAX_AMOUNT:
        raise _Fault(f"'{name}' needs an integer of at most {_MAX_AMOUNT} in magnitude")
    return value


def receiver(name: str, value: Any) -> DateTimeValue:
    """The date-time a Joda method runs on (ISO text, as stored variables hold it, is read too)."""
    if isinstance(value, DateTimeValue):
        return value
    if isinstance(value, DateValue):
        return DateTimeValue(dt.datetime.combine(value.day, dt.time(), _UTC))
    if isinstance(value, str):
        return parse_date_time(value, name)
    raise _Fault(f"method '{name}' needs a date-time, not a {_kind(value)}")


def _plus(name: str, unit: str, sign: int) -> Callable[[Any, Any], DateTimeValue]:
    months_per, keyword = _UNITS[unit]

    def method(value: Any, amount: Any) -> DateTimeValue:
        moment, count = receiver(name, value), sign * _amount(name, amount)
        if keyword is None:
            return DateTimeValue(_add_months(moment.moment, count * months_per))
        try:
            return DateTimeValue(moment.moment + dt.timedelta(**{keyword: count}))
        except OverflowError:
            raise _Fault("date is out of range (years 1 to 9999)") from None

    return method


def _with_time(value: Any, hour: Any, minute: Any, second: Any, millis: Any) -> DateTimeValue:
    moment = receiver("withTime", value).moment
    parts = [_amount("withTime", part) for part in (hour, minute, second, millis)]
    try:
        replaced = moment.replace(hour=parts[0], minute=parts[1], second=parts[2], microsecond=parts[3] * 1000)
    except ValueError:
        raise _Fault("'withTime' needs hour 0-23, minute 0-59, second 0-59, millis 0-999") from None
    return DateTimeValue(replaced)


def _start_of_day(value: Any) -> DateTimeValue:
    moment = receiver("withTimeAtStartOfDay", value).moment
    return DateTimeValue(moment.replace(hour=0, minute=0, second=0, microsecond=0))


def _with_field(name: str, field: str) -> Callable[[Any, Any], DateTimeValue]:
    def method(value: Any, amount: Any) -> DateTimeValue:
        moment, part = receiver(name, value).moment, _amount(name, amount)
        fields: dict[str, Any] = {field: part * 1000 if field == "microsecond" else part}
        try:
            replaced = moment.replace(**fields)
        except ValueError:
            raise _Fault(f"'{name}' value {part} is out of range") from None
        return DateTimeValue(replaced)

    return method


def _getter(name: str, read: Callable[[dt.datetime], int]) -> Callable[[Any], int]:
    return lambda value: read(receiver(name, value).moment)


def _compare_instants(name: str, test: Callable[[dt.datetime, dt.datetime], bool]) -> Callable[[Any, Any], bool]:
    return lambda value, other: test(receiver(name, value).moment, receiver(name, other).moment)


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- Joda patterns

_PATTERN_RE: Final = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+")
_DAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES: Final = tuple(calendar.month_name)


def _field(letter: str, width: int, moment: dt.datetime) -> str:
    numbers = {
        "y": moment.year,
        "M": moment.month,
        "d": moment.day,
        "H": moment.hour,
        "h": (moment.hour % 12) or 12,
        "m": moment.minute,
        "s": moment.second,
        "D": moment.timetuple().tm_yday,
    }
    if letter == "y" and width == 2:
        return f"{moment.year % 100:02d}"
    if letter == "M" and width >= 3:
        name = _MONTH_NAMES[moment.month]
        return name if width >= 4 else name[:3]
    if letter in numbers:
        return f"{numbers[letter]:0{width}d}"
    if letter == "S":
        return f"{moment.microsecond:06d}"[:width].ljust(width, "0")
    if letter == "E":
        name = _DAY_NAMES[moment.weekday()]
        return name if width >= 4 else name[:3]
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "Z":
        return "+00:00" if width >= 2 else "+0000"
    if letter == "z":
        return "UTC"
    raise _Fault(f"pattern letter '{letter}' is not supported")


def format_pattern(value: Any, pattern: Any = None) -> str:
    """Joda's ``toString()`` (ISO 8601) or ``toString(pattern)`` (yyyy MM dd HH mm ss SSS E a Z ...)."""
    moment = receiver("toString", value)
    if pattern is None:
        return str(moment)
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
        raise _Fault(f"'toString' needs a pattern of at most {_MAX_PATTERN} characters")
    pieces: list[str] = []
    for match in _PATTERN_RE.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            pieces.append(token[1:-1].replace("''", "'") or "'")
        elif match.group(1):
            pieces.append(_field(token[0], len(token), moment.moment))
        else:
            pieces.append(token)
    return "".join(pieces)


def _date_methods() -> dict[str, tuple[Callable[..., Any], int, int, str]]:
    """``name -> (impl, min args, max args, doc)`` of the Joda-like date-time methods."""
    methods: dict[str, tuple[Callable[..., Any], int, int, str]] = {}
    for unit in _UNITS:
        methods[f"plus{unit}"] = (_plus(f"plus{unit}", unit, 1), 1, 1, f"d.plus{unit}(n): n {unit.lower()} later")
        methods[f"minus{unit}"] = (_plus(f"minus{unit}", unit, -1), 1, 1, f"d.minus{unit}(n): n {unit.lower()} earlier")
    methods["withTime"] = (_with_time, 4, 4, "d.withTime(hour, minute, second, millis): same day at that time")
    methods["withTimeAtStartOfDay"] = (_start_of_day, 0, 0, "d.withTimeAtStartOfDay(): same day at 00:00")
    for name, field in (
        ("withYear", "year"),
        ("withMonthOfYear", "month"),
        ("withDayOfMonth", "day"),
        ("withHourOfDay", "hour"),
        ("withMinuteOfHour", "minute"),
        ("withSecondOfMinute", "second"),
        ("withMillisOfSecond", "microsecond"),
    ):
        methods[name] = (_with_field(name, field), 1, 1, f"d.{name}(n): the date-time with that {field}")
    for name, read in (
        ("getYear", lambda m: m.year),
        ("getMonthOfYear", lambda m: m.month),
        ("getDayOfMonth", lambda m: m.day),
        ("getDayOfWeek", lambda m: m.isoweekday()),
        ("getHourOfDay", lambda m: m.hour),
        ("getMinuteOfHour", lambda m: m.minute),
        ("getSecondOfMinute", lambda m: m.second),
        ("getMillis", _millis),
        ("getTime", _millis),
    ):
        methods[name] = (_getter(name, read), 0, 0, f"d.{name}()")
    methods["toDate"] = (lambda value: receiver("toDate", value), 0, 0, "d.toDate(): as a date (stored as ISO text)")
    methods["toDateTime"] = (lambda value: receiver("toDateTime", value), 0, 0, "d.toDateTime(): the date-time itself")
    methods["isBefore"] = (_compare_instants("isBefore", lambda a, b: a < b), 1, 1, "d.isBefore(e)")
    methods["isAfter"] = (_compare_instants("isAfter", lambda a, b: a > b), 1, 1, "d.isAfter(e)")
    methods["isEqual"] = (_compare_instants("isEqual", lambda a, b: a == b), 1, 1, "d.isEqual(e)")
    methods["isBeforeNow"] = (lambda value: receiver("isBeforeNow", value).moment < _now(), 0, 0, "d.isBeforeNow()")
    methods["isAfterNow"] = (lambda value: receiver("isAfterNow", value).moment > _now(), 0, 0, "d.isAfterNow()")
    return methods


DATE_METHODS: Final = _date_methods()


# --------------------------------------------------------------------------- functions


def fn_now() -> DateTimeValue:
    return DateTimeValue(_now())


def fn_today() -> DateValue:
    return DateValue(_now().date())


def fn_date(value: Any, month: Any = None, day: Any = None) -> DateValue:
    """FEEL ``date("2024-01-31")``, ``date(dateTime)`` or ``date(year, month, day)``."""
    if month is not None or day is not None:
        parts = [_amount("date", part) for part in (value, month, day)]
        try:
            return DateValue(dt.date(parts[0], parts[1], parts[2]))
        except ValueError:
            raise _Fault("'date' needs a valid year, month and day") from None
    if isinstance(value, DateTimeValue):
        return DateValue(value.moment.date())
    if isinstance(value, DateValue):
        return value
    return parse_date(value)


def fn_date_and_time(value: Any) -> DateTimeValue:
    if isinstance(value, DateTimeValue):
        return value
    if isinstance(value, DateValue):
        return DateTimeValue(dt.datetime.combine(value.day, dt.time(), _UTC))
    return parse_date_time(value)


def fn_duration(value: Any) -> DurationValue:
    return value if isinstance(value, DurationValue) else parse_duration(value)


def temporal_property(value: Temporal, name: str) -> Any:
    """FEEL properties: ``d.year``, ``d.month``, ``d.day``, ``d.weekday``, ``t.hour`` ..., ``p.days`` ..."""
    if isinstance(value, DurationValue):
        table = {
            "years": value.months // 12,
            "months": value.months % 12,
            "days": value.span.days,
            "hours": value.span.seconds // 3600,
            "minutes": value.span.seconds // 60 % 60,
            "seconds": value.span.seconds % 60,
        }
    else:
        moment = value.moment if isinstance(value, DateTimeValue) else dt.datetime.combine(value.day, dt.time())
        table = {"year": moment.year, "month": moment.month, "day": moment.day, "weekday": moment.isoweekday()}
        if isinstance(value, DateTimeValue):
            table |= {"hour": moment.hour, "minute": moment.minute, "second": moment.second}
    if name in table:
        return table[name]
    raise _Fault(f"a {temporal_kind(value)} has no property '{name}'")


def plain(value: Any) -> Any:
    """A value with every date, date-time and duration in it turned into ISO 8601 text."""
    if is_temporal(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value
