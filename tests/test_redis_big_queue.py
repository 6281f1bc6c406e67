"""A group queue of 100k open tasks: a page of its to-do list reads a bounded number of
entries (every command Redis runs, its scripts' included, counted with MONITOR on a
redis-server of our own: work counted, not timed), and is correct.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis

from backends import redis_query
from backends.base import Instance, InstanceQuery, Principals, Step, Task, TaskQuery
from backends.redis import RedisBackend
from backends.redis_codec import encode
from tests.conftest import own_redis_server

pytestmark = pytest.mark.redis

QUEUE = 100_000
T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own: MONITOR sees this module's commands and no other test's."""
    with own_redis_server(tmp_path_factory.mktemp("own-redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


#: writes a chunk of tasks server-side (packing 100k commands in Python takes seconds):
#: ARGV the task template (JSON hash fields), the first n, how many, then each
#: partition's key root; the task id is "<n % partitions>-n<n>"
FILL = """
local template, first, count = cjson.decode(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local partitions = #ARGV - 3
for n = first, first + count - 1 do
  local p = n % partitions
  local root, id = ARGV[4 + p], p .. "-n" .. n
  local priority, created = (n % 7) * 10 + 20, 1700000000000 + math.floor(n / 3)
  local flat = {}
  for name, value in pairs(template) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call("HSET", root .. "task:" .. id, unpack(flat))
  local created_text = string.format("%.0f", created)
  redis.call("HSET", root .. "task:" .. id, "id", id, "priority", priority, "ct", created_text)
  redis.call("ZADD", root .. "q:group:big", string.format("%.0f", (999 - priority) * 4398046511104 + created), id)
end
"""


def _fill(backend: RedisBackend, count: int) -> None:
    """``count`` open tasks in group ``big``, laid out as the scripts lay them out."""
    template = encode(Task("x", "Approve", "0-x", "p:1", "P", T0, "approve", candidate_groups=["big"]))
    roots = [backend.pkey(p) for p in range(backend.partitions)]
    for first in range(0, count, 5000):
        backend.client.eval(FILL, 0, json.dumps(template), first, min(5000, count - first), *roots)


def _bulk(n: int) -> tuple[int, int]:
    return (n % 7) * 10 + 20, T0 + n // 3


#: what one command may read of a sorted set: a page, or a filter's window
RANGE_READS = ("ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE")
#: commands that read a whole key or keyspace, never on a query's path
WHOLE_READS = {"KEYS", "SCAN", "SSCAN", "ZSCAN", "HSCAN", "SMEMBERS", "SUNION", "SINTER", "LRANGE", "HKEYS"}


def _commands(url: str, action: Callable[[], None]) -> list[list[str]]:
    """The commands Redis runs on keys under ``big:`` during ``action()`` (its scripts' included)."""
    seen: list[list[str]] = []
    watching = threading.Event()
    end = "ECHO end-of-queries"

    def watch() -> None:
        with redis.Redis.from_url(url).monitor() as monitor:
            watching.set()
            for entry in monitor.listen():
                if entry["command"] == end:
                    return
                seen.append(entry["command"].split(" "))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert watching.wait(10), "MONITOR did not start"
    action()
    redis.Redis.from_url(url).echo(end.split(" ")[1])
    thread.join(10)
    assert not thread.is_alive(), "MONITOR did not see the end of the queries"
    return [c for c in seen if len(c) > 1 and c[1].startswith("big:")]


def _entries_read(client: redis.Redis, command: list[str]) -> int:
    """Entries a command reads: a range's length (up to the set's size), else 1."""
    name = command[0].upper()
    if name not in RANGE_READS:
        return 1
    size = int(client.zcard(command[1]))
    if name in ("ZRANGE", "ZREVRANGE") and "BYSCORE" not in command and "BYLEX" not in command:
        start, stop = int(command[2]), int(command[3])
        return min(size, stop - start + 1) if stop >= 0 else size
    limit = [i for i, arg in enumerate(command) if arg.upper() == "LIMIT"]
    return min(size, int(command[limit[0] + 2])) if limit else size


def test_a_page_of_a_100k_task_group_queue_is_fast_in_redis_and_correct(own_redis: str) -> None:
    backend = RedisBackend(own_redis, prefix="big")
    try:
        _fill(backend, QUEUE)
        # and two through the real write path: they must sort among the bulk ones
        for priority in (99, 1):
            instance = Instance(backend.new_id(), "p:1", "p", "P", {}, T0)
            task = Task(backend.new_id(near=instance.id), "Approve", instance.id, "p:1", "P", T0, "approve",
                        priority=priority, candidate_groups=["big"])  # fmt: skip
            backend.apply_steps([Step(instance=instance, created=[task], new=True)])
        query = TaskQuery(candidates=Principals(groups=frozenset({"big"})), start=0, size=50)
        got: dict[str, object] = {}

        def pages() -> None:
            got["page"], got["total"] = backend.query_tasks(query)
            got["second"], _ = backend.query_tasks(TaskQuery(candidates=query.candidates, start=50, size=50))

        def filtered() -> None:
            # filters (issue 11 part 6): a filter examines a bounded window, a process key alone its own queues
            got["filtered"], got["examined"] = backend.query_tasks(
                replace(query, task_definition_key="approve", size=10)
            )
            got["by_process"], got["two"] = backend.query_tasks(TaskQuery(process_key="p"))
            got["instances"], got["started"] = backend.list_instances(InstanceQuery(process_key="p", size=1))

        paged, windowed = _commands(own_redis, pages), _commands(own_redis, filtered)
        for command in paged + windowed:
            assert command[0].upper() not in WHOLE_READS, command
        read_paged = [_entries_read(backend.client, c) for c in paged]
        read_windowed = [_entries_read(backend.client, c) for c in windowed]
        # two pages of 50 read the first 100 of each partition's queue, and the 100 tasks shown
        assert max(read_paged) <= 100
        assert sum(read_paged) <= backend.partitions * (50 + 100 + 2) + 100
        # a filter reads at most FILTER_SCAN entries of each partition's queue, then the tasks it
        # examines (a known cost: with 16 partitions that is up to 80k entries of this 100k queue)
        assert max(read_windowed) <= redis_query.FILTER_SCAN
        assert sum(read_windowed) <= (backend.partitions + 1) * redis_query.FILTER_SCAN + 20 * backend.partitions
        page, second, filtered_tasks, by_process = got["page"], got["second"], got["filtered"], got["by_process"]
        assert isinstance(page, list) and isinstance(second, list)
        assert isinstance(filtered_tasks, list) and isinstance(by_process, list)
        assert got["examined"] == redis_query.FILTER_SCAN and filtered_tasks[0].priority == 99
        assert got["two"] == 2 and [t.priority for t in by_process] == [99, 1]  # bulk tasks are only in the group queue
        assert got["started"] == 2 and len(got["instances"]) == 1  # type: ignore[arg-type]
        assert got["total"] == QUEUE + 2
        assert len(page) == 50 and page[0].priority == 99
        keys = [query.sort_key(t) for t in page + second]
        assert keys == sorted(keys) and len({t.id for t in page + second}) == 100
        best_bulk = sorted((-_bulk(n)[0], _bulk(n)[1]) for n in range(QUEUE))[:49]
        assert [(-t.priority, t.create_time) for t in page[1:]] == best_bulk
    finally:
        backend.clear()
        backend.close()
