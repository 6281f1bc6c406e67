"""Reads across the partitions of the Redis backend, merged in the service.

Task queries, due timers, message/signal subscriptions and external-task fetching
each read every partition (one pipeline, split per node on a cluster) and merge.

Each partition keeps one sorted set per queue (``assignee:<user>``, and per
candidate user/group/role ``q:`` for unassigned and ``qa:`` for assigned tasks),
scored by :func:`queue_score` so that Redis orders them as the API sorts by
default (priority descending, create time ascending, then id). A default-sorted
page reads only the first ``start + size`` entries of each named queue in each
partition (one pipeline, split per node on a cluster), merges them, and loads
only the page's task hashes; ``totalRecordCount`` comes from ZCARD (less
a union count when a query names several queues: see :func:`_union_count`).
Other sorts read the named queues whole (their cost follows the matches).

Filters: ``instanceId`` reads the instance's own task list (a few tasks) and
filters it. ``processKey`` alone reads the process key's queues (``pq:<key>``
unassigned, ``pqa:<key>`` assigned) as a group's. Otherwise ``processKey``,
``businessKey`` and ``taskDefinitionKey`` (without ``instanceId``)
examine the first :data:`FILTER_SCAN` entries of the named queues in queue order
(one pipeline of ZRANGEs, one of task hashes, one of the instances' business keys)
and filter them in the service: matches further down a longer queue are not found,
and ``totalRecordCount`` counts the matches among the entries examined.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from backends.base import (
    ExternalTaskRecord,
    Instance,
    InstanceQuery,
    Task,
    TaskQuery,
    fetch_window,
    parse_member,
)
from backends.redis_codec import decode_instance
from bpm.errors import InstanceNotFound

if TYPE_CHECKING:
    from backends.redis import RedisBackend

#: up to this many queue entries a multi-queue count reads them all (a few ms at most)
EXACT_COUNT = 20_000
#: create times are below 2**42 ms (year 2109); 1000 * 2**42 < 2**53 keeps scores exact
TIME_SPAN = 2**42
#: a filtered query (no instanceId) examines at most this many entries of the named queues
FILTER_SCAN = 5_000


def queue_score(priority: int, create_time: int) -> int:
    """The queue score of a task (mirrors queue_score in backends/lua/_common.lua)."""
    return (999 - min(max(priority, 0), 999)) * TIME_SPAN + min(max(create_time, 0), TIME_SPAN - 1)


def queue_names(query: TaskQuery) -> list[tuple[str, ...]]:
    """The key parts of every queue ``query`` reads (the same in every partition); a query
    naming only a process key reads that key's queues (``pq`` unassigned, ``pqa`` assigned)."""
    if not query.names_principals:
        if query.process_key is None:
            return []
        words = ("pq",) if query.unassigned else ("pq", "pqa")
        return [(word, query.process_key) for word in words]
    named: list[tuple[str, ...]] = [] if query.unassigned else [("assignee", u) for u in sorted(query.assignees)]
    words = ("q", "qa") if query.include_assigned and not query.unassigned else ("q",)
    for kind, names in (
        ("user", query.candidates.users),
        ("group", query.candidates.groups),
        ("role", query.candidates.roles),
    ):
        named += [(word, kind, name) for name in sorted(names) for word in words]
    return named


def _default_order(query: TaskQuery) -> bool:
    return query.sort == "priority" and (query.order or "desc") == "desc"


def query_tasks(backend: RedisBackend, query: TaskQuery) -> tuple[list[Task], int]:
    """One page of ``query`` and the number of all matches (see the module docstring)."""
    if query.instance_id is not None:
        return _instance_query(backend, query)
    named = queue_names(query)
    if not named:
        return [], 0
    keys = [[backend.pkey(p, *parts) for parts in named] for p in range(backend.partitions)]
    if query.filtered and not query.only_process_key:
        return _filtered_query(backend, query, keys)
    if not _default_order(query):
        ids = _read_whole(backend, keys)
        return query.page(t for t in load_tasks(backend, sorted(ids)) if t is not None and query.matches(t))
    wanted = query.start + query.size
    with backend._pipeline() as pipe:
        for key in itertools.chain.from_iterable(keys):
            pipe.zrange(key, 0, wanted - 1, withscores=True)
            pipe.zcard(key)
        replies = pipe.execute()
    best: dict[str, float] = {}
    for page in replies[::2]:
        best.update(page)
    total = sum(int(count) for count in replies[1::2])
    if len(named) > 1:  # a task may be in several named queues: count it once
        total = _union_count(backend, keys, total)
    ordered = sorted(best, key=lambda member: (best[member], member))[query.start : wanted]
    found = [t for t in load_tasks(backend, ordered) if t is not None]
    return found, total


def _instance_query(backend: RedisBackend, query: TaskQuery) -> tuple[list[Task], int]:
    """A query with ``instanceId``: that instance's active tasks, filtered (none if unknown)."""
    assert query.instance_id is not None
    try:
        tasks = [t for t in backend.instance_tasks(query.instance_id) if query.matches(t)]
    except InstanceNotFound:
        return [], 0
    return query.page(_with_business_key(backend, query, tasks))


def _filtered_query(backend: RedisBackend, query: TaskQuery, keys: list[list[str]]) -> tuple[list[Task], int]:
    """The matches among the first FILTER_SCAN entries of the named queues, in queue order."""
    with backend._pipeline() as pipe:
        for key in itertools.chain.from_iterable(keys):
            pipe.zrange(key, 0, FILTER_SCAN - 1, withscores=True)
        replies = pipe.execute()
    best: dict[str, float] = {}
    for page in replies:
        best.update(page)
    examined = sorted(best, key=lambda member: (best[member], member))[:FILTER_SCAN]
    tasks = [t for t in load_tasks(backend, examined) if t is not None and query.matches(t)]
    return query.page(_with_business_key(backend, query, tasks))


def _with_business_key(backend: RedisBackend, query: TaskQuery, tasks: list[Task]) -> list[Task]:
    """``tasks`` whose instance has the query's business key (one pipeline of HGETs)."""
    if query.business_key is None or not tasks:
        return tasks
    instance_ids = sorted({t.instance_id for t in tasks})
    with backend._pipeline() as pipe:
        for instance_id in instance_ids:
            pipe.get(backend.ikey(instance_id, "inst"))
        stored = dict(zip(instance_ids, pipe.execute(), strict=True))
    instances = {instance_id: decode_instance(instance_id, value) for instance_id, value in stored.items()}
    keys = {instance_id: instance.business_key if instance else "" for instance_id, instance in instances.items()}
    return [t for t in tasks if keys[t.instance_id] == query.business_key]


def _union_count(backend: RedisBackend, keys: list[list[str]], total: int) -> int:
    """The number of distinct tasks in the named queues: exact up to EXACT_COUNT entries,
    beyond that the sum less each pair's ZINTERCARD (a task in three queues or more is
    then undercounted)."""
    if total <= EXACT_COUNT:
        return len(_read_whole(backend, keys))
    with backend._pipeline() as pipe:
        for partition_keys in keys:
            for first, second in itertools.combinations(partition_keys, 2):
                pipe.zintercard(2, [first, second])
        return max(total - sum(int(n) for n in pipe.execute()), 0)


def _read_whole(backend: RedisBackend, keys: list[list[str]]) -> set[str]:
    with backend._pipeline() as pipe:
        for key in itertools.chain.from_iterable(keys):
            pipe.zrange(key, 0, -1)
        return {member for reply in pipe.execute() for member in reply}


def load_tasks(backend: RedisBackend, task_ids: list[str]) -> list[Task | None]:
    """Several tasks in one pipeline, in the order asked (None for unknown ids)."""
    if not task_ids:
        return []
    decode: Callable[[dict[str, str], str], Task] = backend.decode_task
    with backend._pipeline() as pipe:
        for task_id in task_ids:
            pipe.hgetall(backend.ikey(task_id, "task"))
        replies: list[Any] = pipe.execute()
    return [decode(data, task_id) if data else None for data, task_id in zip(replies, task_ids, strict=True)]


def list_instances(backend: RedisBackend, query: InstanceQuery) -> tuple[list[Instance], int]:
    """One page of instances, newest first, from the partitions' instance lists (zsets by create
    time, kept by apply_steps.lua: ``inst-list:<state>``, ``…:pk:<key>``, ``…:bk:<business key>``).

    A page reads the first ``start + size`` of each list it names (one pipeline, with their
    ZCARDs for the total), merges, and loads the page. With both a process and a business key
    it reads the business key's lists (the first FILTER_SCAN entries) and filters. An ended
    instance past retention leaves the lists at a later write in its partition (at most 20 each
    write); until then it is skipped, and the total may count it."""
    states = [query.state] if query.state else ["active", "ended"]
    if query.business_key is not None:
        dimension: tuple[str, ...] = ("bk", query.business_key)
    elif query.process_key is not None:
        dimension = ("pk", query.process_key)
    else:
        dimension = ()
    keys = [backend.pkey(p, "inst-list", state, *dimension) for p in range(backend.partitions) for state in states]
    narrowed = query.business_key is not None and query.process_key is not None
    wanted = FILTER_SCAN if narrowed else query.start + query.size
    with backend._pipeline() as pipe:
        for key in keys:
            pipe.zrevrange(key, 0, wanted - 1, withscores=True)
            pipe.zcard(key)
        replies = pipe.execute()
    created: dict[str, float] = {}
    for reply in replies[::2]:
        created.update(reply)
    ordered = sorted(created, key=lambda member: (-created[member], member))
    if narrowed:
        matched = [i for i in backend.instances(ordered[:FILTER_SCAN]) if i is not None and query.matches(i)]
        return matched[query.start : query.start + query.size], len(matched)
    total = sum(int(count) for count in replies[1::2])
    page = backend.instances(ordered[query.start : query.start + query.size])
    return [i for i in page if i is not None], total


def due_timers(backend: RedisBackend, now: int, limit: int) -> list[tuple[str, int]]:
    """The earliest ``limit`` due entries of the global timer index and every partition's."""
    if limit <= 0:
        return []
    keys = [backend.key("timers")] + [backend.pkey(p, "timers") for p in range(backend.partitions)]
    with backend._pipeline() as pipe:
        for key in keys:
            pipe.zrangebyscore(key, "-inf", now, start=0, num=limit, withscores=True)
        replies = pipe.execute()
    found = sorted((int(due), member) for reply in replies for member, due in reply)
    return [(member, due) for due, member in found[:limit]]


def subscriptions(backend: RedisBackend, kind: str, name: str) -> list[tuple[str, str]]:
    """Every partition's waits for message or signal ``name``, sorted."""
    if kind not in ("message", "signal"):
        raise ValueError(f"subscriptions are kept for messages and signals, not {kind!r}")
    word = "msg" if kind == "message" else "sig"
    with backend._pipeline() as pipe:
        for partition in range(backend.partitions):
            pipe.smembers(backend.pkey(partition, word, name))
        replies = pipe.execute()
    return [parse_member(m) for m in sorted(member for reply in replies for member in reply)]


def fetch_and_lock(
    backend: RedisBackend, worker: str, topics: Mapping[str, int], max_tasks: int, now: int
) -> list[ExternalTaskRecord]:
    """Read each partition's candidates, pick the best across partitions, then lock them
    partition by partition; a task a racing worker took meanwhile is skipped."""
    if max_tasks <= 0 or not topics:
        return []
    candidates: list[tuple[int, int, str, str, int]] = []  # (-priority, created, id, topic, partition)
    window = str(fetch_window(max_tasks))
    for partition in range(backend.partitions):
        for ext_id, topic, priority, created in backend._prun(
            "fetch_candidates", partition, None, str(now), window, *topics
        ):
            candidates.append((-int(priority), int(created), ext_id, topic, partition))
    chosen = sorted(candidates)[:max_tasks]
    locked: dict[str, ExternalTaskRecord] = {}
    for partition in sorted({c[4] for c in chosen}):
        args = [worker, str(now)]
        for _, _, ext_id, topic, _ in (c for c in chosen if c[4] == partition):
            args += [ext_id, topic, str(topics[topic])]
        for flat in backend._prun("lock_externals", partition, None, *args):
            record = backend._external(flat)
            locked[record.id] = record
    return [locked[c[2]] for c in chosen if c[2] in locked]
