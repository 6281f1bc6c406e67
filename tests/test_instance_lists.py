"""Instance lists, ``GET …/instances`` (API.md "Forms and queries"; issue 11, part 6), on every
backend: newest first, by process key, business key and state, paged, with totals; on Redis the
lists are zsets kept by the write script, and ended instances past retention leave them.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from flask import Flask

from backends.base import Backend, Instance, InstanceQuery, Step
from backends.redis import RedisBackend
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import DATA
from tests.test_backend_contract import make_instance, start, step_for

# (name, process key, business key, create time, ended)
ROWS = [
    ("a1", "a", "k1", 10, False),
    ("a2", "a", "k2", 20, True),
    ("b1", "b", "k1", 30, False),
    ("b2", "b", "", 40, True),
    ("a3", "a", "k1", 50, True),
    ("a4", "a", "", 60, False),
]


def fill(backend: Backend) -> dict[str, Instance]:
    """The rows' instances (spread over the partitions); the ended ones ended by a step."""
    made: dict[str, Instance] = {}
    for name, key, business_key, created, ended in ROWS:
        instance, _ = start(
            backend, definition_id=f"{key}:1", process_key=key, business_key=business_key, create_time=created
        )
        if ended:
            step = step_for(instance)
            step.instance.ended, step.instance.end_time = True, created + 1
            backend.apply_steps([step])
            instance = step.instance
        made[name] = instance
    return made


def names(backend: Backend, made: dict[str, Instance], **options: Any) -> tuple[list[str], int]:
    by_id = {i.id: n for n, i in made.items()}
    found, total = backend.list_instances(InstanceQuery(**options))
    return [by_id[i.id] for i in found], total


def test_lists_are_newest_first_filtered_and_paged(backend: Backend) -> None:
    made = fill(backend)
    assert names(backend, made) == (["a4", "a3", "b2", "b1", "a2", "a1"], 6)
    assert names(backend, made, start=1, size=2) == (["a3", "b2"], 6)
    assert names(backend, made, start=6) == ([], 6)
    assert names(backend, made, state="active") == (["a4", "b1", "a1"], 3)
    assert names(backend, made, state="ended", size=2) == (["a3", "b2"], 3)
    assert names(backend, made, process_key="a") == (["a4", "a3", "a2", "a1"], 4)
    assert names(backend, made, process_key="a", state="ended") == (["a3", "a2"], 2)
    assert names(backend, made, process_key="a", state="active", start=1) == (["a1"], 2)
    assert names(backend, made, business_key="k1") == (["a3", "b1", "a1"], 3)
    assert names(backend, made, business_key="k1", state="active") == (["b1", "a1"], 2)
    assert names(backend, made, business_key="k1", process_key="a") == (["a3", "a1"], 2)
    assert names(backend, made, business_key="k1", process_key="a", state="active", size=1) == (["a1"], 1)
    assert names(backend, made, process_key="none") == ([], 0)
    [listed], _ = backend.list_instances(InstanceQuery(process_key="a", state="ended", size=1))
    assert listed == backend.instance(made["a3"].id)  # the full record


def test_an_instance_ended_with_its_creation_is_listed_as_ended(backend: Backend) -> None:
    instance = make_instance(backend, ended=True, end_time=1, business_key="once")
    backend.apply_steps([Step(instance=instance, new=True)])
    assert [i.id for i in backend.list_instances(InstanceQuery(state="ended"))[0]] == [instance.id]
    assert backend.list_instances(InstanceQuery(state="active")) == ([], 0)
    assert backend.list_instances(InstanceQuery(business_key="once"))[1] == 1


def test_redis_lists_drop_ended_instances_past_retention(redis_backend: Backend) -> None:
    """The expiry is simulated: the instance's keys deleted and its expiry entry made due (the memory
    backend removes swept instances from its one store)."""
    backend = redis_backend
    assert isinstance(backend, RedisBackend)
    backend.configure(retention="1h")
    made = fill(backend)
    gone = made["a3"]
    client = backend._client
    for kind in ("inst", "history", "inst-ext", "inst-closed"):
        client.delete(backend.ikey(gone.id, kind))
    expiry = backend.pkey(backend.partition(gone.id), "inst-expiry")
    due = [m for m in client.zrange(expiry, 0, -1) if gone.id in m]
    assert len(due) == 1
    client.zadd(expiry, {due[0]: 0})
    assert names(backend, made, process_key="a", state="ended") == (["a2"], 2)  # skipped, still counted
    started, _ = start(backend, id=backend.new_id(near=gone.id), definition_id="c:1", process_key="c")
    assert names(backend, made, process_key="a", state="ended") == (["a2"], 2)  # a start there prunes nothing
    step = step_for(started)
    step.instance.ended, step.instance.end_time = True, 71
    backend.apply_steps([step])  # an end there: the write that adds to the ended lists prunes them
    assert names(backend, made, process_key="a", state="ended") == (["a2"], 1)
    assert names(backend, made, business_key="k1") == (["b1", "a1"], 2)
    waiting = sum(client.zcard(backend.pkey(p, "inst-expiry")) for p in range(backend.partitions))
    assert waiting == 3  # a2's, b2's and the new one's


# -- the API ----------------------------------------------------------------------------


@pytest.fixture
def api(backend: Backend) -> Api:
    """The app on a clock that ticks a millisecond per reading, so instances started one after the
    other have distinct create times (the list's order is newest first)."""
    ticks = itertools.count(1_800_000_000_000)
    app: Flask = make_app(backend, DATA / "queries", BPM_CLOCK=lambda: next(ticks))
    return Api(app.test_client())


def test_the_instances_route(api: Api) -> None:
    started = []
    for business_key in ("o-1", "o-2", "o-1"):
        body = {"processName": "q_refund", "businessKey": business_key}
        started.append(ok(api.post("/process/start", json=body, query_string={"user": "carol"})))
    parent = api.start("q_parent", {"packer": "pat"})
    [check] = api.tasks(started[0])
    api.identity("carol", ["clerks"])
    api.complete_ok(check["id"], "carol")
    response = api.get("/instances", query_string={"processKey": "q_refund"})
    listed = ok(response)
    assert [i["id"] for i in listed] == started[::-1] and response.get_json()["totalRecordCount"] == 3
    assert list(listed[2]) == ["id", "definitionId", "processKey", "processName", "businessKey", "createBy",
                               "createTime", "ended", "endTime", "parentId"]  # fmt: skip
    assert listed[2]["ended"] is True and listed[2]["businessKey"] == "o-1" and listed[0]["ended"] is False
    response = api.get("/instances", query_string={"businessKey": "o-1", "state": "active"})
    assert [i["id"] for i in ok(response)] == [started[2]] and response.get_json()["totalRecordCount"] == 1
    response = api.get("/instances", query_string={"state": "active", "size": 2})
    assert response.get_json()["totalRecordCount"] == 5  # two refunds, the parent, its child and grandchild
    children = [i for i in ok(api.get("/instances", query_string={"processKey": "q_child"}))]
    assert [c["parentId"] for c in children] == [parent]
    fails(api.get("/instances", query_string={"state": "done"}), 400, "VALIDATION_ERROR")
    fails(api.get("/instances", query_string={"size": 0}), 400, "VALIDATION_ERROR")
