"""A group queue of 100k open tasks: a page of its to-do list costs Redis no command
over 10 ms (checked with SLOWLOG on a redis-server of our own), and is correct.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from backends import redis_query
from backends.base import Instance, InstanceQuery, Principals, Step, Task, TaskQuery
from backends.redis import RedisBackend
from backends.redis_codec import encode
from tests.conftest import redis_unavailable
from tests.redis_cluster_support import wait_until

pytestmark = pytest.mark.redis

QUEUE = 100_000
T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def slowlog_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server logging every command over 10 ms."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_unavailable("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder: Path = tmp_path_factory.mktemp("slowlog-redis")
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--slowlog-log-slower-than", "10000", "--slowlog-max-len", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: bool(redis.Redis(port=port).ping()), 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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


def test_a_page_of_a_100k_task_group_queue_is_fast_in_redis_and_correct(slowlog_redis: str) -> None:
    backend = RedisBackend(slowlog_redis, prefix="big")
    try:
        _fill(backend, QUEUE)
        # and two through the real write path: they must sort among the bulk ones
        for priority in (99, 1):
            instance = Instance(backend.new_id(), "p:1", "p", "P", {}, T0)
            task = Task(backend.new_id(near=instance.id), "Approve", instance.id, "p:1", "P", T0, "approve",
                        priority=priority, candidate_groups=["big"])  # fmt: skip
            backend.apply_steps([Step(instance=instance, created=[task], new=True)])
        backend.client.slowlog_reset()
        query = TaskQuery(candidates=Principals(groups=frozenset({"big"})), start=0, size=50)
        page, total = backend.query_tasks(query)
        second, _ = backend.query_tasks(TaskQuery(candidates=query.candidates, start=50, size=50))
        # filters (issue 11 part 6): a filter examines a bounded window, a process key alone its own queues
        filtered, examined = backend.query_tasks(replace(query, task_definition_key="approve", size=10))
        by_process, two = backend.query_tasks(TaskQuery(process_key="p"))
        instances, started = backend.list_instances(InstanceQuery(process_key="p", size=1))
        assert backend.client.slowlog_get() == []
        assert examined == redis_query.FILTER_SCAN and filtered[0].priority == 99
        assert two == 2 and [t.priority for t in by_process] == [99, 1]  # the bulk tasks are only in the group queue
        assert started == 2 and len(instances) == 1
        assert total == QUEUE + 2
        assert len(page) == 50 and page[0].priority == 99
        keys = [query.sort_key(t) for t in page + second]
        assert keys == sorted(keys) and len({t.id for t in page + second}) == 100
        best_bulk = sorted((-_bulk(n)[0], _bulk(n)[1]) for n in range(QUEUE))[:49]
        assert [(-t.priority, t.create_time) for t in page[1:]] == best_bulk
    finally:
        backend.clear()
        backend.close()
