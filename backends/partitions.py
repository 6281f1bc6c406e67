"""Partitions: which part of the store an id lives in, and the ids that say so.

State is split into ``N`` partitions (default 16). An instance and everything of
it (tasks, external tasks, timers, subscriptions, history) lives in one
partition, and a called child in its parent's. Ids carry their partition:
``<partition>-<counter in base 36>`` (``"7-2bq"``), so any route finds its
records without a search.

New ids for a record of an existing instance must be made *near* it:
:meth:`Backend.new_id` takes ``near=``, and the use cases wrap each engine run
in :func:`id_scope` so the ids the engine makes inside land in that partition.

On Redis each partition is one hash tag. The tags are short strings chosen so
their CRC16 slots sit near the middle of the ``N`` equal ranges of 0..16383,
so the slots of a cluster's masters (given out in ranges) get similar shares.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import random
import string
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from redis.crc import key_slot

DEFAULT_PARTITIONS = 16
MAX_PARTITIONS = 1024
SLOTS = 16384
_DIGITS = string.digits + string.ascii_lowercase

#: the id whose partition new ids made without ``near=`` go to (see :func:`id_scope`)
_SCOPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("bpm_id_scope", default=None)


class id_scope:
    """Inside, :meth:`Backend.new_id` without ``near=`` makes ids in ``instance_id``'s partition.

    (A plain context manager, not a generator: it is entered several times per use case.)"""

    __slots__ = ("instance_id", "token")

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id

    def __enter__(self) -> None:
        self.token = _SCOPE.set(self.instance_id)

    def __exit__(self, *exc: object) -> None:
        _SCOPE.reset(self.token)


def scoped_id() -> str | None:
    """The id of the innermost :func:`id_scope`, or None."""
    return _SCOPE.get()


def base36(number: int) -> str:
    if number < 0:
        raise ValueError("base36 takes a non-negative number")
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = _DIGITS[digit] + out
        if number == 0:
            return out


def check_count(count: int) -> int:
    """``count`` if it is a valid number of partitions, else ValueError."""
    if not 1 <= count <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, not {count}")
    return count


def make_id(partition: int, counter: int) -> str:
    return f"{partition}-{base36(counter)}"


@functools.lru_cache(maxsize=4096)  # an instance's id is asked for several times per use case
def partition_of(record_id: str, count: int) -> int:
    """The partition an id lives in. An id not made here (a client's guess, an old id)
    maps to a fixed partition by its CRC32, where it is simply not found."""
    head, sep, tail = record_id.partition("-")
    if sep and tail and head.isascii() and head.isdigit() and len(head) <= 4 and str(int(head)) == head:
        partition = int(head)
        if partition < count:
            return partition
    return zlib.crc32(record_id.encode("utf-8", "surrogatepass")) % count


@functools.cache
def _tags_of_length(length: int) -> tuple[tuple[int, str], ...]:
    """Every tag of ``length`` characters [0-9a-z] with its slot, by slot."""
    tags = ("".join(chars) for chars in itertools.product(_DIGITS, repeat=length))
    return tuple(sorted((key_slot(tag.encode()), tag) for tag in tags))


@functools.cache
def partition_tags(count: int) -> tuple[str, ...]:
    """One short hash tag per partition, its slot near the middle of its range."""
    check_count(count)
    tolerance = max(SLOTS // (8 * count), 1)
    tags: list[str] = []
    for partition in range(count):
        middle = (2 * partition + 1) * SLOTS // (2 * count)
        for length in (1, 2, 3):
            near = [
                (abs(slot - middle), tag)
                for slot, tag in _tags_of_length(length)
                if abs(slot - middle) <= tolerance and tag not in tags
            ]
            if near:
                tags.append(min(near)[1])
                break
        else:  # pragma: no cover - 46656 three-character tags cover every slot range
            raise ValueError(f"no hash tag found for partition {partition} of {count}")
    return tuple(tags)


class PartitionPicker:
    """Round-robin over the partitions from a random start: new instances spread evenly
    over partitions (and so over a cluster's masters) from every worker."""

    def __init__(self, count: int) -> None:
        self.count = check_count(count)
        self._next = itertools.count(random.randrange(count))
        self._lock = threading.Lock()

    def pick(self, near: str | None = None) -> int:
        """``near``'s partition, else the innermost :func:`id_scope`'s, else the next one."""
        near = near or scoped_id()
        if near:
            return partition_of(near, self.count)
        with self._lock:
            return next(self._next) % self.count


def check_one_partition(steps: Sequence[Any], partition: Callable[[str], int]) -> int:
    """The one partition of every record of ``steps`` (:class:`backends.base.Step`);
    ValueError naming the first record elsewhere (a write is one partition's)."""
    first = partition(steps[0].instance.id)
    prefix = f"{first}-"  # an id that starts so (and goes on) is in partition ``first``: no parsing
    for step in steps:
        ids = [step.instance.id]
        if step.created:
            ids += [t.id for t in step.created]
        if step.externals:
            ids += [e.id for e in step.externals]
        if step.subscribed:
            ids += [sub.instance_id for sub in step.subscribed]
        for record_id in ids:
            if not (record_id.startswith(prefix) and len(record_id) > len(prefix)) and partition(record_id) != first:
                raise ValueError(
                    f"id '{record_id}' is not in partition {first} of this write: make it with "
                    "new_id(near=<instance id>) or inside id_scope(<instance id>)"
                )
    return first
