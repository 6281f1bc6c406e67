"""Work accounting: what each operation costs, charged before it runs (:class:`WorkMeter`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bpm.expressions.limits import CHARS_PER_UNIT, LOOP_ITEM_WORK, MAX_SEQUENCE, MAX_VALUE_DEPTH, MAX_WORK
from bpm.expressions.values import _Fault


def _text_units(length: int) -> int:
    return 1 + length // CHARS_PER_UNIT


def _scalar_size(value: Any) -> tuple[int, int] | None:
    """``(weight, characters)`` of a scalar, or None for a container (see :meth:`WorkMeter.size`)."""
    if isinstance(value, str):
        return _text_units(len(value) + 2), len(value) + 2
    if isinstance(value, bool) or value is None:
        return 1, 5
    if isinstance(value, int):
        digits = value.bit_length() * 31 // 100 + 2
        return _text_units(digits), digits
    if isinstance(value, list | tuple | Mapping):
        return None
    return 1, 24  # floats; other objects cannot be converted or serialised anyway


#: exact types :func:`_scalar_size` sizes without looking inside
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def _scalar_weight(value: Any) -> int:
    """The weight of a value of one of :data:`_PLAIN_SCALARS` (``_scalar_size(value)[0]``, by exact type)."""
    kind = type(value)
    if kind is str:
        return 1 + (len(value) + 2) // CHARS_PER_UNIT
    if kind is int:
        return 1 + (value.bit_length() * 31 // 100 + 2) // CHARS_PER_UNIT
    return 1  # bool, None, float


def _slots(container: Any) -> int:
    """Items a walk of ``container`` looks at: its elements, or a map's keys and values."""
    return 2 * len(container) if isinstance(container, Mapping) else len(container)


def _flat_size(container: Any) -> tuple[int, int] | None:
    """The size of a list of scalars of one type, computed at C speed; None for anything else."""
    if isinstance(container, Mapping):
        return None
    kinds = set(map(type, container))
    count = len(container)
    if not kinds:
        return 1, 2
    if len(kinds) > 1:
        return None
    kind = kinds.pop()
    if kind is int:
        return 1 + count, 2 + 4 * count + sum(map(int.bit_length, container)) * 31 // 100
    if kind is str:
        total = sum(map(len, container)) + 2 * count
        return 1 + count + total // CHARS_PER_UNIT, 2 + total + 2 * count
    if kind in (float, bool, type(None)):
        return 1 + count, 2 + 28 * count
    return None


def _top_items(value: Any) -> int:
    return _slots(value) if isinstance(value, list | tuple | Mapping) else 0


def _items(value: Any) -> int:
    return len(value) if isinstance(value, list | tuple) else 1


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield key
            yield item
    else:
        yield from value


@dataclass(slots=True)
class WorkLog:
    """What :func:`record_work` saw: evaluations run, their total and largest work."""

    evaluations: int = 0
    total: int = 0
    largest: int = 0

    def add(self, used: int) -> None:
        self.evaluations += 1
        self.total += used
        self.largest = max(self.largest, used)


_WORK_LOG: ContextVar[WorkLog | None] = ContextVar("bpm_expression_work_log", default=None)


@contextmanager
def record_work() -> Iterator[WorkLog]:
    """Record the work of every evaluation run in this context (tests, benchmarks, metrics)."""
    log = WorkLog()
    token = _WORK_LOG.set(log)
    try:
        yield log
    finally:
        _WORK_LOG.reset(token)


class WorkMeter:
    """The work an evaluation spends, charged before each operation does it.

    Units: one per syntax-node visit is :data:`NODE_WORK`; one per item of a
    list or map that an operation allocates, copies, scans or compares (a
    nested value counts every item it would have once written out, shared
    references included); one per :data:`CHARS_PER_UNIT` characters of text
    scanned, copied or produced. A charge that would take :attr:`used` past
    :attr:`budget` is refused (the evaluation then fails with
    :class:`ExpressionError`) and the operation is not done, so ``used`` never
    exceeds ``budget``. One meter may span several evaluations (a script's
    statements share one budget).
    """

    __slots__ = ("_sizes", "budget", "used")

    def __init__(self, budget: int | None = None) -> None:
        self.budget = MAX_WORK if budget is None else budget
        self.used = 0
        # id -> (value, weight, characters) of containers already measured; holding the
        # value keeps its id from being reused while the meter lives
        self._sizes: dict[int, tuple[Any, int, int]] = {}

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def charge(self, units: int) -> None:
        """Spend ``units`` or raise (spending nothing) when the budget cannot cover them."""
        if units > self.budget - self.used:
            raise _Fault(f"evaluation exceeded its budget of {self.budget} work units")
        self.used += units

    def size(self, value: Any, limit: int | None = None) -> tuple[int, int]:
        """``(weight, characters)``: items of ``value`` written out, and its JSON length estimate.

        The weight is one per scalar and container plus one per
        :data:`CHARS_PER_UNIT` characters of each scalar's text; shared
        references count once per occurrence. Measuring charges one unit per
        item looked at, each distinct container being looked at once per meter.
        Stops early, returning a weight above ``limit``, once the weight passes it.
        """
        scalar = _scalar_size(value)
        if scalar is not None:
            return scalar
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1], known[2]
        return self._measure(value, self.remaining if limit is None else limit)

    def _measure(self, root: Any, limit: int) -> tuple[int, int]:
        # An explicit stack (values may nest deeper than Python recursion allows); each
        # container is charged its item count when it is entered, before it is walked.
        sizes = self._sizes
        flat = self._flat(root)
        if flat is not None:
            return flat
        frames: list[list[Any]] = [[root, _children(root), 1, 2]]
        grand = 1
        while frames:
            frame = frames[-1]
            descend = None
            weight, chars = frame[2], frame[3]
            for child in frame[1]:
                kind = type(child)
                if kind is str:
                    length = len(child) + 2
                    weight += 1 + length // CHARS_PER_UNIT
                    chars += length + 2
                    grand += 1 + length // CHARS_PER_UNIT
                elif kind is int:
                    weight += 1
                    chars += child.bit_length() * 31 // 100 + 4
                    grand += 1
                elif kind is float or kind is bool or child is None:
                    weight += 1
                    chars += 26
                    grand += 1
                else:
                    known = sizes.get(id(child))
                    size = known[1:] if known is not None else _scalar_size(child)
                    if size is None:
                        size = self._flat(child)
                        if size is None:
                            descend = child
                            break
                    weight += size[0]
                    chars += size[1] + 2
                    grand += size[0]
                if grand > limit:
                    return limit + 1, chars
            frame[2], frame[3] = weight, chars
            if descend is not None:
                if len(frames) >= MAX_VALUE_DEPTH:
                    raise _Fault(f"cannot use a value nested deeper than {MAX_VALUE_DEPTH} levels")
                frames.append([descend, _children(descend), 1, 2])
                grand += 1
                continue
            frames.pop()
            sizes[id(frame[0])] = (frame[0], weight, chars)
            if not frames:
                return weight, chars
            frames[-1][2] += weight
            frames[-1][3] += chars + 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _flat(self, container: Any) -> tuple[int, int] | None:
        """Size a container of one scalar type at C speed; else charge for walking it in Python."""
        self.charge(_slots(container))
        size = _flat_size(container)
        if size is None:
            self.charge(_slots(container) * (LOOP_ITEM_WORK - 1))
            return None
        self._sizes[id(container)] = (container, *size)
        return size

    def weight(self, value: Any, limit: int | None = None) -> int:
        return self.size(value, limit)[0]

    # ---- the cost of each kind of operation (charged by the caller before it acts)

    def text_cost(self, value: Any) -> int:
        """Converting ``value`` to text: refused when the text would be too long."""
        weight, chars = self.size(value)
        if weight > self.remaining:
            return weight
        if chars > MAX_SEQUENCE + 2:
            raise _Fault(f"text would be longer than {MAX_SEQUENCE} characters")
        return weight + chars // CHARS_PER_UNIT

    def equality_cost(self, left: Any, right: Any) -> int:
        """Deep ``==``: at most the smaller side is walked (bounded by the remaining budget)."""
        if type(left) in _PLAIN_SCALARS and type(right) in _PLAIN_SCALARS:  # the common case, without the walk
            return scalar_equality_cost(left, right)
        if isinstance(left, bool) and isinstance(right, str):
            return self.weight(right)
        if isinstance(right, bool) and isinstance(left, str):
            return self.weight(left)
        if _top_items(right) < _top_items(left):
            left, right = right, left  # measure the side that looks smaller first
        first = self.weight(left)
        return min(first, self.weight(right, limit=min(first, self.remaining)))

    def order_cost(self, left: Any, right: Any) -> int:
        return scalar_order_cost(left, right)

    def membership_cost(self, container: Any, item: Any) -> int:
        """``item in container``: a substring search, a scan with deep ``==``, or a key lookup."""
        if isinstance(container, str):
            return _text_units(len(container) + (len(item) if isinstance(item, str) else 0))
        if isinstance(container, list | tuple):
            # each element is compared at most as deeply as it is itself, in a Python loop
            return self.weight(container) + LOOP_ITEM_WORK * len(container)
        return _text_units(len(item)) if isinstance(item, str) else 1

    def sequence_cost(self, *values: Any) -> int:
        """Copying or scanning strings and lists once, item by item (not deeply)."""
        units = 1
        for value in values:
            if isinstance(value, str):
                units += len(value) // CHARS_PER_UNIT
            elif isinstance(value, list | tuple):
                units += len(value)
        return units

    def scan_cost(self, *values: Any) -> int:
        """min/max: every item is compared, in a Python loop, at most as deeply as it is itself."""
        return sum(self.weight(value) + LOOP_ITEM_WORK * _items(value) for value in values)

    def finish(self, used: int) -> None:
        """Report one evaluation's work to the :func:`record_work` log of this context, if any."""
        report_work(used)


def report_work(used: int) -> None:
    """Report one evaluation's work to the :func:`record_work` log of this context, if any."""
    log = _WORK_LOG.get()
    if log is not None:
        log.add(used)


def scalar_equality_cost(left: Any, right: Any) -> int:
    """:meth:`WorkMeter.equality_cost` of two values of :data:`_PLAIN_SCALARS` (no walk, no meter)."""
    if type(left) is bool and type(right) is str:
        return _scalar_weight(right)
    if type(right) is bool and type(left) is str:
        return _scalar_weight(left)
    return min(_scalar_weight(left), _scalar_weight(right))


def scalar_order_cost(left: Any, right: Any) -> int:
    """:meth:`WorkMeter.order_cost` (it needs no meter)."""
    if isinstance(left, str) and isinstance(right, str):
        return _text_units(min(len(left), len(right)))
    return 1
