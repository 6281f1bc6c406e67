"""Task query filters and instance task trees (API.md "Forms and queries"; issue 11, part 6).

``unassigned``, ``processKey``, ``businessKey``, ``taskDefinitionKey`` and ``instanceId`` on
``GET …/tasks`` (paging, sort and totals included) and ``includeChildren`` on
``GET …/instance/<id>/tasks``, on every backend (memory, Redis, Redis Cluster).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from backends import redis_query
from backends.base import Backend, Task, TaskQuery
from backends.redis import RedisBackend
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import DATA
from tests.test_backend_contract import start, who

# -- the backend contract ---------------------------------------------------------------


def spread(backend: Backend) -> dict[str, list[Task]]:
    """Instances in several partitions: keys a/b, business keys k1/k2, tasks in group g."""
    made: dict[str, list[Task]] = {}
    rows: list[
        tuple[str, str, str, list[tuple[str, int, int, str | None]]]
    ] = [  # (name, process key, business key, [(task key, priority, create time, assignee)])
        ("a1", "a", "k1", [("check", 50, 10, None), ("ship", 70, 11, "ann")]),
        ("a2", "a", "k2", [("check", 90, 12, None), ("ship", 50, 13, None)]),
        ("b1", "b", "k1", [("check", 50, 14, None)]),
        ("b2", "b", "", [("ship", 10, 15, None), ("check", 50, 16, "bob")]),
        ("a3", "a", "k1", [("check", 50, 17, None), ("ship", 50, 18, None)]),
    ]
    for name, key, business_key, tasks in rows:
        _, made[name] = start(
            backend,
            *(
                {"task_definition_key": t, "priority": p, "create_time": c, "assignee": a, "candidate_groups": ["g"]}
                for t, p, c, a in tasks
            ),
            definition_id=f"{key}:1",
            process_key=key,
            business_key=business_key,
        )
    return made


def page(backend: Backend, **options: Any) -> tuple[list[tuple[str, int]], int]:
    """(task key, create time) of one page of group g's queue, and the total."""
    options.setdefault("candidates", who(groups=("g",)))
    found, total = backend.query_tasks(TaskQuery(**options))
    return [(t.task_definition_key, t.create_time) for t in found], total


def test_unassigned_drops_the_users_own_list_and_assigned_queue_entries(backend: Backend) -> None:
    _, [mine, open_, others] = start(
        backend,
        {"assignee": "ann", "candidate_users": ["ann"], "create_time": 1},
        {"candidate_groups": ["g"], "create_time": 2},
        {"assignee": "bob", "candidate_groups": ["g"], "create_time": 3},
    )
    ann: dict[str, Any] = {"assignees": frozenset({"ann"}), "candidates": who(("ann",), ("g",))}
    assert [t.id for t in backend.query_tasks(TaskQuery(**ann))[0]] == [mine.id, open_.id]
    assert backend.query_tasks(TaskQuery(**ann, unassigned=True)) == ([open_], 1)
    group: dict[str, Any] = {"candidates": who(groups=("g",)), "include_assigned": True}
    assert backend.query_tasks(TaskQuery(**group, unassigned=True)) == ([open_], 1)
    assert backend.query_tasks(TaskQuery(**group))[1] == 2 and others.id


def test_filters_narrow_the_union_with_paging_sort_and_totals(backend: Backend) -> None:
    spread(backend)
    assert page(backend, process_key="a") == ([("check", 12), ("check", 10), ("ship", 13), ("check", 17),
                                                ("ship", 18)], 5)  # fmt: skip
    assert page(backend, process_key="a", start=1, size=2) == ([("check", 10), ("ship", 13)], 5)
    assert page(backend, process_key="a", start=5) == ([], 5)
    assert page(backend, process_key="a", sort="createTime", order="desc", size=2) == ([("ship", 18),
                                                                                      ("check", 17)], 5)  # fmt: skip
    assert page(backend, business_key="k1") == ([("check", 10), ("check", 14), ("check", 17), ("ship", 18)], 4)
    assert page(backend, business_key="k1", process_key="b") == ([("check", 14)], 1)
    assert page(backend, task_definition_key="ship") == ([("ship", 13), ("ship", 18), ("ship", 15)], 3)
    assert page(backend, task_definition_key="ship", include_assigned=True, size=1) == ([("ship", 11)], 4)
    assert page(backend, process_key="nothing") == ([], 0)
    assert page(backend, business_key="none") == ([], 0)
    ann = who(("ann",), ("g",))
    assert page(backend, assignees=frozenset({"ann"}), candidates=ann, task_definition_key="ship") == (
        [("ship", 11), ("ship", 13), ("ship", 18), ("ship", 15)],
        4,
    )
    assert page(backend, assignees=frozenset({"ann"}), candidates=ann, task_definition_key="ship", unassigned=True) == (
        [("ship", 13), ("ship", 18), ("ship", 15)],
        3,
    )


def test_instance_id_alone_lists_the_instances_tasks_and_narrows_a_queue(backend: Backend) -> None:
    made = spread(backend)
    instance_id = made["b2"][0].instance_id
    found, total = backend.query_tasks(TaskQuery(instance_id=instance_id))
    assert [(t.task_definition_key, t.assignee) for t in found] == [("check", "bob"), ("ship", None)] and total == 2
    assert page(backend, candidates=who(), instance_id=instance_id, unassigned=True) == ([("ship", 15)], 1)
    assert page(backend, instance_id=instance_id) == ([("ship", 15)], 1)
    assert page(backend, instance_id=instance_id, include_assigned=True, sort="createTime") == (
        [("ship", 15), ("check", 16)],
        2,
    )
    assert page(backend, instance_id=instance_id, business_key="k1") == ([], 0)
    assert page(backend, instance_id=made["a3"][0].instance_id, business_key="k1", size=1) == ([("check", 17)], 2)
    assert page(backend, candidates=who(), instance_id=made["b2"][0].id.split("-")[0] + "-zzzz") == ([], 0)


def test_a_process_key_alone_reads_its_own_queues(backend: Backend) -> None:
    spread(backend)
    nobody = who()
    assert page(backend, candidates=nobody, process_key="b") == ([("check", 14), ("check", 16), ("ship", 15)], 3)
    assert page(backend, candidates=nobody, process_key="a", start=2, size=2) == ([("check", 10), ("ship", 13)], 6)
    assert page(backend, candidates=nobody, process_key="a", unassigned=True) == (
        [("check", 12), ("check", 10), ("ship", 13), ("check", 17), ("ship", 18)],
        5,
    )
    assert page(backend, candidates=nobody, process_key="b", sort="createTime", order="desc") == (
        [("check", 16), ("ship", 15), ("check", 14)],
        3,
    )
    assert page(backend, candidates=nobody, process_key="a", business_key="k1") == (
        [("ship", 11), ("check", 10), ("check", 17), ("ship", 18)],
        4,
    )
    assert page(backend, candidates=nobody, process_key="none") == ([], 0)
    assert backend.query_tasks(TaskQuery()) == ([], 0)


def test_a_filtered_redis_query_examines_a_bounded_window(
    redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis: filters other than instanceId look at the first FILTER_SCAN entries of the queues
    (the memory backend filters every task of the named queues)."""
    backend = redis_backend
    assert isinstance(backend, RedisBackend)
    made = spread(backend)
    monkeypatch.setattr(redis_query, "FILTER_SCAN", 3)  # the queue's first three: a's check 12, 10, ship 13
    assert page(backend, process_key="a") == ([("check", 12), ("check", 10), ("ship", 13)], 3)
    assert page(backend, process_key="b") == ([], 0)  # b's tasks are further down the queue
    monkeypatch.setattr(redis_query, "FILTER_SCAN", 4)
    assert page(backend, process_key="b") == ([("check", 14)], 1)
    assert page(backend, instance_id=made["a3"][0].instance_id)[1] == 2  # the instance's own list


# -- the API ----------------------------------------------------------------------------


@pytest.fixture
def api(backend: Backend) -> Api:
    app: Flask = make_app(backend, DATA / "queries")
    return Api(app.test_client())


def start_order(api: Api, name: str, business_key: str, prio: int) -> str:
    body = {"processName": name, "businessKey": business_key, "object": {"prio": prio}}
    return str(ok(api.post("/process/start", json=body, query_string={"user": "carol"})))


def keys(tasks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(t["processName"], t["taskDefinitionKey"]) for t in tasks]


def test_the_task_list_filters(api: Api) -> None:
    first = start_order(api, "q_order", "o-1", 80)
    start_order(api, "q_order", "o-2", 20)
    refund = start_order(api, "q_refund", "o-1", 0)
    tasks, total = api.query(group="clerks", processKey="q_order")
    assert total == 4 and keys(tasks) == [("Query order", "check")] + [("Query order", "ship")] * 2 + [
        ("Query order", "check")
    ]
    tasks, total = api.query(group="clerks", processKey="q_order", start=1, size=2)
    assert total == 4 and [t["taskDefinitionKey"] for t in tasks] == ["ship", "ship"]
    tasks, total = api.query(group="clerks", businessKey="o-1", taskDefinitionKey="check", sort="createTime")
    assert total == 2 and [t["instanceId"] for t in tasks] == [first, refund]
    ship = api.task(first, "ship")
    api.claim(ship["id"], "ann")
    assert api.query(user="ann", processKey="q_order")[1] == 2  # assigned + candidate
    tasks, total = api.query(user="ann", unassigned="true")
    assert total == 1 and tasks[0]["instanceId"] != first
    assert api.query(group="clerks", includeAssigned="true", unassigned="true", instanceId=first)[1] == 1
    tasks, total = api.query(instanceId=first)  # alone: the instance's tasks, assigned ones too
    assert total == 2 and {t["taskDefinitionKey"] for t in tasks} == {"check", "ship"}
    assert api.query(instanceId=first, unassigned="true")[1] == 1
    tasks, total = api.query(processKey="q_order", size=3)  # alone: every open task of the process
    assert total == 4 and len(tasks) == 3 and tasks[0]["taskDefinitionKey"] == "check"
    assert api.query(processKey="q_order", unassigned="true")[1] == 3
    assert api.query(processKey="q_order", taskDefinitionKey="ship")[1] == 2
    fails(api.get("/tasks", query_string={"businessKey": "o-1"}), 400, "VALIDATION_ERROR")
    fails(api.get("/tasks", query_string={"group": "clerks", "processKey": ""}), 400, "VALIDATION_ERROR")


def test_instance_tasks_include_the_called_instances_recursively(api: Api) -> None:
    parent = api.start("q_parent", {"packer": "pat"})
    assert keys(api.tasks(parent)) == [("Query parent", "review")]
    tree = ok(api.get(f"/instance/{parent}/tasks", query_string={"includeChildren": "true"}))
    assert keys(tree) == [("Query parent", "review"), ("Query child", "pick"), ("Query grandchild", "pack")]
    pick, pack = tree[1], tree[2]
    assert pick["assignee"] is None and pick["candidateGroups"] == ["pickers"] and pack["assignee"] == "pat"
    assert ok(api.get(f"/instance/{parent}/tasks", query_string={"includeChildren": "false"})) == tree[:1]
    child = pick["instanceId"]
    assert keys(ok(api.get(f"/instance/{child}/tasks", query_string={"includeChildren": "true"}))) == [
        ("Query child", "pick"),
        ("Query grandchild", "pack"),
    ]
    api.complete_ok(pack["id"], "pat")  # the grandchild ends
    assert keys(ok(api.get(f"/instance/{parent}/tasks", query_string={"includeChildren": "true"}))) == [
        ("Query parent", "review"),
        ("Query child", "pick"),
    ]
    assert api.query(instanceId=child, unassigned="true")[1] == 1  # the unassigned task, found over HTTP
    fails(api.get("/instance/0-zzzz/tasks", query_string={"includeChildren": "true"}), 404, "INSTANCE_NOT_FOUND")
