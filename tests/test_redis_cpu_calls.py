"""The Redis server's work per write: the commands a script runs inside (INFO commandstats on
a private redis-server, so only this test's calls count) and what each may skip.

* A call's first send is marked (``!`` before ARGV[1], backends/redis_call.py): its request
  id is new, so ``_once.lua`` does not look for its done marker; any later send of the same
  call is unmarked and finds the marker (exactly once, tests/test_redis_exactly_once.py).
* A start does not read the server clock nor prune the ended lists (only an end does).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from backends.redis import RedisBackend
from backends.redis_call import FIRST_SEND, ScriptCaller
from backends.redis_functions import function_name
from bpm.runtime import Runtime
from tests.conftest import PROCESSES, own_redis_server

pytestmark = pytest.mark.redis

ECHO = "return ARGV[1]"
SCRIPTS = {"echo": (hashlib.sha1(ECHO.encode()).hexdigest(), ECHO)}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    with own_redis_server(tmp_path) as port:
        yield port


@pytest.fixture
def runtime(server: int) -> Iterator[Runtime]:
    backend = RedisBackend(f"redis://127.0.0.1:{server}/0", prefix=f"cpu{uuid.uuid4().hex[:8]}")
    made = Runtime(backend, PROCESSES)
    made.deploy_directory()
    made.set_identity("author", ["legal", "finance"], [])
    yield made
    backend.close()


def calls(client: Any) -> dict[str, int]:
    """Calls per command since the last reset (FCALL itself left out), then reset."""
    stats = client.info("commandstats")
    client.config_resetstat()
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items() if name != "cmdstat_fcall"}


def test_first_sends_read_no_done_marker_and_a_start_neither_clock_nor_lists(runtime: Runtime) -> None:
    client = runtime.backend.client  # type: ignore[attr-defined]
    runtime.start(process_name="parallel review", user="author")  # the library loaded: its resend looks
    calls(client)
    instance_id = runtime.start(process_name="parallel review", user="author")
    started = calls(client)
    assert started.get("get") == 1  # the instance (INSTANCE_EXISTS), not done:<request id>
    assert "time" not in started and "zrangebyscore" not in started
    task = runtime.instance_tasks(instance_id)[0]
    calls(client)
    runtime.claim(task.id, "author")
    assert "get" not in calls(client)  # a claim reads only the task's hash


def test_an_unmarked_resend_answers_the_first_runs_reply_and_a_marked_one_runs_again(runtime: Runtime) -> None:
    backend = runtime.backend
    assert isinstance(backend, RedisBackend) and backend._lean is not None
    sent: list[tuple[str, list[str], list[str]]] = []
    lean = backend._lean

    def recording(script: str, keys: list[str], args: list[str]) -> Any:
        sent.append((script, keys, args))
        return lean(script, keys, args)

    backend._lean = recording  # type: ignore[assignment]
    instance_id = runtime.start(process_name="parallel review", user="author")
    backend._lean = lean
    [(script, keys, args)] = sent
    assert script == "apply_steps" and not args[0].startswith(FIRST_SEND)
    client = backend.client
    name = function_name(script)
    length = client.llen(backend.ikey(instance_id, "history"))
    # a retry (unmarked, as every send after the first): the first run's reply, nothing written
    assert client.fcall(name, len(keys), *keys, *args) == ["OK"]
    # a first send runs the script: the instance exists by now
    assert client.fcall(name, len(keys), *keys, FIRST_SEND + args[0], *args[1:])[0] == "INSTANCE_EXISTS"
    assert client.llen(backend.ikey(instance_id, "history")) == length


def test_the_caller_marks_only_a_calls_first_send(server: int) -> None:
    client = redis.Redis(port=server, decode_responses=True)
    marking = ScriptCaller(client, SCRIPTS, mark_first_send=True)
    assert marking("echo", ["k"], ["v"]) == "v"  # NOSCRIPT: sent again with EVAL, unmarked
    assert marking("echo", ["k"], ["v"]) == FIRST_SEND + "v"
    [conn] = marking._idle
    conn._sock.close()  # the first send fails: the retry on a new connection goes unmarked
    assert marking("echo", ["k"], ["v"]) == "v"
    assert marking("echo", ["k"], ["v"]) == FIRST_SEND + "v"
    assert ScriptCaller(client, SCRIPTS)("echo", ["k"], ["v"]) == "v"  # not asked to mark: never
    client.close()


def test_the_scripts_without_the_library_read_the_same_head(runtime: Runtime) -> None:
    """EVALSHA (Redis before 7, an ACL without FCALL): _common.lua parses ARGV[1] as begin() does."""
    backend = runtime.backend
    assert isinstance(backend, RedisBackend) and backend._lean is not None
    backend._lean.functions = False
    client = backend.client
    for _ in range(2):  # the first: NOSCRIPT, then EVAL (a resend: unmarked)
        calls(client)
        instance_id = runtime.start(process_name="parallel review", user="author")
        task = runtime.instance_tasks(instance_id)[0]
        assert runtime.claim(task.id, "author").assignee == "author"
    used = calls(client)
    assert "fcall" not in used and "eval" not in used and used["evalsha"] == 3
    assert used["get"] == 2  # the start's instance and instance_tasks': no done marker
