"""Recent copies of tasks and instances as Redis answered them, kept by one RedisBackend.

A completion reads the task and its instance, decides, then writes. The read is a round
trip of its own, though this process has most often just seen both: the instance's task
list (its value comes with the tasks) and the claim (the task's hash). So the backend
keeps the last stored values it was answered, raw (the instance's value string, the
task's flat hash) and never a decoded record: each use decodes its own objects, which
the engine may change in place. Only :meth:`RedisBackend.task_and_instance_to_complete`
answers from them; every other read reads the store.

A copy may be out of date (another process changed the task or the instance since): a
completion decided on one must not be written. The write (``apply_steps.lua``) checks
the instance's rev, as always, and, for the task, the stored values of the fields the
decision used (:data:`DECIDED_FIELDS`) against those of the copy it was made on; a
difference is a CONCURRENT_MODIFICATION, and the runtime's retry reads the store
afresh. That copy travels from the read to the write in a thread-local: in one thread
a completion reads, decides and writes in turn, so the write checks what that very
read answered, whatever other threads keep meanwhile.

Both maps are bounded (the oldest entries go first, and an instance value over
:data:`LARGEST` characters is not kept: at most some 16 MiB of them); a plain OrderedDict operation is
atomic under the GIL, and an entry lost or overwritten by a racing thread only costs
a read of the store.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable
from typing import TypeVar

from backends.redis_codec import TASK_NAMES, pairs, split_instance

__all__ = ["DECIDED_FIELDS", "RecentCopies"]

#: the task's hash fields a completion is decided on, beside its status (the script
#: requires an active task anyway): assignee, candidates, and its create time (a task
#: made anew under a reused id, after a store was cleared, is another task)
DECIDED_FIELDS = (
    "assignee",
    TASK_NAMES["candidate_users"],
    TASK_NAMES["candidate_groups"],
    TASK_NAMES["candidate_roles"],
    TASK_NAMES["create_time"],
)
_INSTANCE = TASK_NAMES["instance_id"]
_V = TypeVar("_V")
#: the longest instance value kept (a larger one is read each time)
LARGEST = 16 * 1024


class RecentCopies:
    """The raw values last answered for tasks and instances (see the module docstring)."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._tasks: OrderedDict[str, list[str]] = OrderedDict()
        self._instances: OrderedDict[str, str] = OrderedDict()
        self._decided = threading.local()

    def keep_task(self, task_id: str, flat: list[str]) -> None:
        """A task's hash as a flat list (an ``id`` pair among them is ignored)."""
        _put(self._tasks, task_id, flat, self.limit)

    def keep_instance(self, instance_id: str, stored: str | None) -> None:
        if stored and len(stored) <= LARGEST:
            _put(self._instances, instance_id, stored, self.limit)

    def forget(self, task_ids: Iterable[str], instance_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            self._tasks.pop(task_id, None)
        for instance_id in instance_ids:
            self._instances.pop(instance_id, None)

    def clear(self) -> None:
        self._tasks.clear()
        self._instances.clear()

    def pair(self, task_id: str) -> tuple[list[str], str] | None:
        """The kept hash of an active task and its instance's value listing it as active, or None."""
        flat = self._tasks.get(task_id)
        if flat is None:
            return None
        fields = pairs(flat)
        if "status" in fields:  # closed (absent while active): ask the store
            return None
        stored = self._instances.get(fields.get(_INSTANCE, ""))
        if stored is None or task_id not in split_instance(stored)[2].split(" "):
            return None  # none kept, or one older than the task: the store has a newer one
        return flat, stored

    def decided(self, task_id: str, flat: list[str]) -> None:
        """Note in this thread that a completion of ``task_id`` is decided on ``flat``."""
        self._decided.task = (task_id, flat)

    def expectations(self, task_ids: Collection[str]) -> dict[str, list[str]]:
        """The values of DECIDED_FIELDS this thread's last decision read, when it was about one of
        ``task_ids`` (the tasks a write completes), by task id; taken (the next write has none)."""
        noted = getattr(self._decided, "task", None)
        if noted is None or noted[0] not in task_ids:
            return {}
        self._decided.task = None
        fields = pairs(noted[1])
        return {noted[0]: [fields.get(name, "") for name in DECIDED_FIELDS]}


def _put(kept: OrderedDict[str, _V], key: str, value: _V, limit: int) -> None:
    kept[key] = value
    if len(kept) > limit:
        with contextlib.suppress(KeyError):  # another thread emptied it meanwhile
            kept.popitem(last=False)
