"""Retention and the history cap, on every backend: ended instances and everything of
theirs go away ``BPM_RETENTION`` after they end, open ones stay; past
``BPM_HISTORY_LIMIT`` the oldest element entries are dropped and audit entries kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend, Instance, Step
from backends.memory import MemoryBackend
from backends.retention import parse_history_limit, parse_retention
from bpm.errors import InstanceNotFound
from bpm.runtime import Runtime
from tests.redis_cluster_support import wait_until

LIFECYCLE = Path(__file__).resolve().parent.parent / "bench" / "lifecycle.bpmn"


def stored_records(backend: Backend) -> int:
    """Redis: the number of keys under the backend's prefix (every node of a cluster), but
    the 30-second records of recent writes (``done:<request id>``, see backends/lua/_once.lua);
    memory: the number of instances, tasks, external tasks and history lists."""
    if isinstance(backend, MemoryBackend):
        backend.instances([])  # any call sweeps what expired
        return len(backend._instances) + len(backend._tasks) + len(backend._externals) + len(backend._history)
    client: Any = backend.client  # type: ignore[attr-defined]
    prefix = backend.prefix  # type: ignore[attr-defined]
    patterns = [f"{{{prefix}}}:*", f"{prefix}:{{*"]
    keys = {key for pattern in patterns for key in client.scan_iter(match=pattern, count=1000)}
    return len({key for key in keys if ":done:" not in key})


def test_retention_syntax() -> None:
    assert parse_retention("90s") == 90_000
    assert parse_retention("12h") == 12 * 3_600_000
    assert parse_retention("30d") == parse_retention("P30D") == parse_retention(None) == 30 * 86_400_000
    assert parse_retention("PT1H30M") == 5_400_000
    assert parse_retention("forever") is None
    for bad in ("", "P", "PT", "30x", "-1d", "soon"):
        with pytest.raises(ValueError):
            parse_retention(bad)
    assert parse_history_limit(None) == 1000 and parse_history_limit("50") == 50
    assert parse_history_limit("0") is None and parse_history_limit("none") is None
    with pytest.raises(ValueError):
        parse_history_limit("-3")


def test_ended_instances_and_everything_of_theirs_expire_open_ones_stay(backend: Backend) -> None:
    backend.configure(retention="2s")
    runtime = Runtime(backend)
    runtime.deploy(LIFECYCLE.read_bytes(), file="lifecycle.bpmn")
    runtime.set_identity("clerk", ["clerks"], [])
    open_ones = [runtime.start(process_name="bench lifecycle", user="clerk") for _ in range(16)]
    baseline = stored_records(backend)
    ended: list[tuple[str, str]] = []
    for n in range(12):
        instance_id = runtime.start(process_name="bench lifecycle", variables={"amount": n}, user="clerk")
        task = runtime.instance_tasks(instance_id)[0]
        runtime.claim(task.id, "clerk")
        runtime.complete(task.id, "clerk", {"approved": n % 2 == 0})
        assert runtime.instance(instance_id).ended
        ended.append((instance_id, task.id))
    assert stored_records(backend) > baseline
    wait_until(lambda: stored_records(backend) == baseline, 30, "the ended instances to expire", interval=0.2)
    for instance_id, task_id in ended:
        assert backend.instance(instance_id) is None and backend.task(task_id) is None
        with pytest.raises(InstanceNotFound):
            backend.history(instance_id)
    for instance_id in open_ones:
        assert [t.task_definition_key for t in backend.instance_tasks(instance_id)] == ["approve"]
        assert backend.history(instance_id)


def test_forever_keeps_ended_instances(backend: Backend) -> None:
    backend.configure(retention="forever")
    instance = Instance(backend.new_id(), "p:1", "p", "P", {}, 1, ended=True)
    backend.apply_steps([Step(instance=instance, new=True)])
    if not isinstance(backend, MemoryBackend):
        client: Any = backend.client  # type: ignore[attr-defined]
        assert client.pttl(backend.ikey(instance.id, "inst")) == -1  # type: ignore[attr-defined]
    assert backend.instance(instance.id) is not None


def element(n: int) -> dict[str, Any]:
    return {"time": n, "type": "element.entered", "elementId": f"e{n}", "elementType": "task"}


def audit(n: int) -> dict[str, Any]:
    return {"time": n, "type": "task.claimed", "user": "ann", "actor": "ann"}


def test_history_past_its_limit_drops_the_oldest_element_entries_and_keeps_audit(backend: Backend) -> None:
    backend.configure(history_limit=5)
    first = Instance(backend.new_id(), "p:1", "p", "P", {}, 1)
    backend.apply_steps([Step(instance=first, new=True, history=[audit(0), element(1), element(2)])])
    assert backend.instance(first.id).history_truncated is False  # type: ignore[union-attr]
    current = first
    for n in range(3, 9):
        current = Instance(**{**current.to_dict(), "rev": current.rev + 1})
        backend.apply_steps([Step(instance=current, history=[audit(n) if n % 3 == 0 else element(n)])])
    kept = backend.history(first.id)
    assert len(kept) == 5
    assert [e["time"] for e in kept if "user" in e] == [0, 3, 6]  # every audit entry kept
    assert [e["time"] for e in kept if "elementType" in e] == [7, 8]  # the newest element entries
    stored = backend.instance(first.id)
    assert stored is not None and stored.history_truncated
    # a later step written from a copy read before the cap keeps the mark
    backend.apply_steps([Step(instance=Instance(**{**current.to_dict(), "rev": current.rev + 1}))])
    assert backend.instance(first.id).history_truncated  # type: ignore[union-attr]


def test_the_instance_view_says_when_its_history_was_truncated(backend: Backend) -> None:
    from tests.api_support import BASE, make_app, ok

    backend.configure(history_limit=6)  # a given backend keeps its own settings; the start writes 4 entries
    client = make_app(backend).test_client()
    ok(client.put(f"{BASE}/identity/alice", json={"groups": ["facilities"], "roles": []}))
    room = {"RoomObject": {"capacity": 20}}
    short = ok(client.post(f"{BASE}/process/start", json={"processName": "booking room", "object": room}))
    assert ok(client.get(f"{BASE}/instance/{short}"))["historyTruncated"] is False
    (task,) = ok(client.get(f"{BASE}/instance/{short}/tasks"))
    ok(client.post(f"{BASE}/tasks/{task['id']}/complete?user=alice"))  # review, gateway, manager approval
    view = ok(client.get(f"{BASE}/instance/{short}"))
    assert view["activeElements"] == ["ManagerApproval"]
    assert view["historyTruncated"] is True
