"""GET instance reads a view from a use case, with as few backend reads as possible, on every backend."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from backends.memory import MemoryBackend
from bpm.runtime import Runtime
from bpm.views import InstanceView
from tests.api_support import BASE, make_app, ok
from tests.conftest import REDIS_URL, make_redis_backend
from tests.test_api_events import EVENTS, INSTANCE_FIELDS
from tests.test_runtime_events import Clock

READS = (
    "instance",
    "instances",
    "instance_tasks",
    "instance_externals",
    "task",
    "task_and_instance",
    "history",
    "external_task",
    "identity",
    "identities",
    "definitions",
    "definition",
    "cache_generation",
)


class CountingMixin:
    """Counts the backend's read calls made by the use cases (each is at least one round trip on
    Redis); a read a backend method makes of itself (``instance`` through ``instances``) is not a
    second call."""

    calls: Counter[str]
    _depth: int = 0

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name not in READS:
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            if object.__getattribute__(self, "_depth") == 0:
                object.__getattribute__(self, "calls")[name] += 1
            object.__setattr__(self, "_depth", object.__getattribute__(self, "_depth") + 1)
            try:
                return value(*args, **kwargs)
            finally:
                object.__setattr__(self, "_depth", object.__getattribute__(self, "_depth") - 1)

        return counted


class CountingMemory(CountingMixin, MemoryBackend):
    pass


@pytest.fixture(params=["memory", "redis"])
def counting(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        backend: Any = CountingMemory()
    else:
        from backends.redis import RedisBackend

        make_redis_backend()  # skips (or fails under CI) when no Redis answers
        cls = type("CountingRedis", (CountingMixin, RedisBackend), {})
        backend = cls(REDIS_URL, prefix=f"bpmtest:{uuid.uuid4().hex[:12]}")
    backend.calls = Counter()
    backend.clear()
    yield backend
    backend.clear()
    backend.close()


def test_get_instance_costs_three_backend_reads_and_one_once_ended(counting: Any) -> None:
    app = make_app(counting, EVENTS, BPM_CLOCK=Clock())
    client = app.test_client()
    runtime: Runtime = app.extensions["bpm_runtime"]
    instance_id = runtime.start(unique_id="boundary_timer_interrupting", business_key="b-1")
    counting.calls.clear()
    view = ok(client.get(f"{BASE}/instance/{instance_id}"))
    assert list(view) == INSTANCE_FIELDS
    assert view["activeElements"] == ["review"] and len(view["activeTasks"]) == 1 and view["businessKey"] == "b-1"
    assert sum(counting.calls.values()) <= 3, counting.calls  # the old route made 6
    runtime.cancel_instance(instance_id)
    counting.calls.clear()
    view = ok(client.get(f"{BASE}/instance/{instance_id}"))
    assert view["ended"] and view["activeTasks"] == [] and view["externalTasks"] == []
    assert sum(counting.calls.values()) == 1, counting.calls


def test_instance_view_is_a_plain_record(counting: Any) -> None:
    runtime = Runtime(counting, EVENTS, now_ms=Clock())
    runtime.deploy_directory()
    instance_id = runtime.start(unique_id="external_tasks", variables={"amount": 3})
    [external] = runtime.fetch_and_lock("w", {"payments": 60_000})
    runtime.fail_external(external[0].id, "w", 0, 0, "down", None)
    view = runtime.instance_view(instance_id)
    assert isinstance(view, InstanceView)
    assert view.external_tasks == [external[0].id] and view.variables == {"amount": 3}
    assert [(i["type"], i["error_message"]) for i in view.incidents] == [("externalTask", "down")]
