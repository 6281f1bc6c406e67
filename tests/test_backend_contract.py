"""The backend contract of backends/base.py, run against every backend.

Each test goes through the ``backend`` fixture of conftest.py (memory and Redis
in turn); the few Redis-only tests at the end cover keys, URLs and outages.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from backends.base import (
    CANCELLED,
    COMPLETED,
    Backend,
    Definition,
    Identity,
    Instance,
    Principals,
    Step,
    Task,
    TaskQuery,
)
from bpm.errors import (
    BackendUnavailable,
    ConcurrentModification,
    Conflict,
    InstanceNotFound,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)
from tests.conftest import REDIS_URL, make_redis_backend

ID_PATTERN = re.compile(r"^\d+-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# -- builders ---------------------------------------------------------------------------


def make_instance(backend: Backend, **overrides: Any) -> Instance:
    values: dict[str, Any] = {
        "id": backend.new_id(),
        "definition_id": "proc:1",
        "process_key": "proc",
        "process_name": "Process",
        "state": {"version": 1, "tokens": [{"at": "review"}], "vars": {"amount": 10}},
        "create_time": 1_700_000_000_000,
    }
    values.update(overrides)
    return Instance(**values)


def make_task(backend: Backend, instance: Instance, **overrides: Any) -> Task:
    values: dict[str, Any] = {
        "id": backend.new_id(),
        "name": "Review",
        "instance_id": instance.id,
        "definition_id": instance.definition_id,
        "process_name": instance.process_name,
        "create_time": 1_700_000_000_000,
        "task_definition_key": "review",
    }
    values.update(overrides)
    return Task(**values)


def start(backend: Backend, *task_overrides: dict[str, Any], **instance_overrides: Any) -> tuple[Instance, list[Task]]:
    """Store a new instance with one task per dict of overrides."""
    instance = make_instance(backend, **instance_overrides)
    tasks = [make_task(backend, instance, **o) for o in task_overrides]
    backend.create_instance(instance, tasks)
    return instance, tasks


def who(users: tuple[str, ...] = (), groups: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> Principals:
    return Principals(frozenset(users), frozenset(groups), frozenset(roles))


def query(
    backend: Backend,
    *,
    assignees: tuple[str, ...] = (),
    users: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
    roles: tuple[str, ...] = (),
    **options: Any,
) -> list[str]:
    """The ids of one page of a task query."""
    found, _ = backend.query_tasks(TaskQuery(frozenset(assignees), who(users, groups, roles), **options))
    return [t.id for t in found]


def todo(backend: Backend, user: str) -> list[str]:
    """A user's to-do list as the runtime asks for it (assigned + candidate)."""
    return query(backend, assignees=(user,), users=(user,))


def step_for(instance: Instance, **fields: Any) -> Step:
    """A step on ``instance`` with the revision moved on by one."""
    return Step(instance=replace(instance, rev=instance.rev + 1), now=1_700_000_009_000, **fields)


EVERYONE = who(("ann", "bob", "cy", "dee"), ("clerks", "managers"), ("admin", "auditor"))


def snapshot(backend: Backend, instances: list[Instance], tasks: list[Task]) -> tuple[Any, ...]:
    """Everything a failed write must leave untouched: records and every index."""
    names = ("ann", "bob", "cy", "dee")
    indexes = (
        [query(backend, assignees=(n,)) for n in names]
        + [query(backend, users=(n,), include_assigned=True) for n in names]
        + [query(backend, groups=(g,), include_assigned=True) for g in EVERYONE.groups]
        + [query(backend, roles=(r,), include_assigned=True) for r in EVERYONE.roles]
    )
    return (
        [backend.instance(i.id) for i in instances],
        [backend.task(t.id) for t in tasks],
        [[t.id for t in backend.instance_tasks(i.id)] for i in instances],
        indexes,
    )


# -- ids, health, clear -----------------------------------------------------------------


def test_new_id_is_a_counter_and_a_uuid4_unique_across_threads(backend: Backend) -> None:
    def many(_: int) -> list[str]:
        return [backend.new_id() for _ in range(250)]

    with ThreadPoolExecutor(8) as pool:
        ids = [i for chunk in pool.map(many, range(8)) for i in chunk]
    assert len(set(ids)) == len(ids) == 2000
    assert all(ID_PATTERN.match(i) for i in ids)
    counters = [int(i.split("-")[0]) for i in ids]
    assert len(set(counters)) == len(counters)


def test_ping_answers(backend: Backend) -> None:
    assert backend.ping() is None


def test_clear_forgets_everything(backend: Backend) -> None:
    instance, [task] = start(backend, {"candidate_users": ["ann"], "assignee": "bob"})
    backend.deploy(Definition("proc", 0, "Process", "<xml/>", "h1", 1))
    backend.bump_cache_generation()
    backend.set_identity(Identity("ann", frozenset({"clerks"})))
    backend.clear()
    assert backend.instance(instance.id) is None
    assert backend.task(task.id) is None
    assert backend.definitions() == []
    assert backend.cache_generation() == 0
    assert backend.identity("ann") == Identity("ann")
    assert todo(backend, "ann") == [] and todo(backend, "bob") == []
    with pytest.raises(InstanceNotFound):
        backend.instance_tasks(instance.id)


# -- definitions ------------------------------------------------------------------------


def definition(key: str = "proc", content_hash: str = "h1", **overrides: Any) -> Definition:
    values: dict[str, Any] = {
        "key": key,
        "version": 99,  # ignored by deploy
        "name": "Booking room",
        "xml": '<definitions><process id="proc" name="Booking — é"/></definitions>',
        "content_hash": content_hash,
        "deploy_time": 1_700_000_000_123,
        "file": "booking_room.bpmn",
        "app_name": "rooms",
        "version_tag": "2.1",
    }
    values.update(overrides)
    return Definition(**values)


def test_deploy_numbers_versions_and_round_trips_every_field(backend: Backend) -> None:
    stored, created = backend.deploy(definition())
    assert created
    assert stored == replace(definition(), version=1)
    assert backend.definition("proc", 1) == stored
    bare, created = backend.deploy(definition(content_hash="h2", file="", app_name="", version_tag=None))
    assert created and bare.version == 2 and bare.version_tag is None and bare.app_name == ""
    assert backend.definition("proc", 2) == bare
    assert isinstance(bare.deploy_time, int) and isinstance(bare.version, int)


def test_deploy_of_unchanged_content_returns_the_latest_version(backend: Backend) -> None:
    first, _ = backend.deploy(definition(deploy_time=1))
    again, created = backend.deploy(definition(deploy_time=2, file="other.bpmn"))
    assert not created
    assert again == first  # the stored one, not the new one
    second, created = backend.deploy(definition(content_hash="h2", deploy_time=3))
    assert created and second.version == 2
    back, created = backend.deploy(definition(content_hash="h1", deploy_time=4))
    assert created and back.version == 3  # only the latest version is compared
    other, created = backend.deploy(definition(key="other", content_hash="h1"))
    assert created and other.version == 1


def test_definitions_lists_every_version_and_definition_finds_one(backend: Backend) -> None:
    assert backend.definitions() == []
    for key, content in [("b", "1"), ("a", "1"), ("b", "2"), ("b", "3")]:
        backend.deploy(definition(key=key, content_hash=content))
    found = sorted(backend.definitions(), key=lambda d: (d.key, d.version))
    assert [(d.key, d.version, d.content_hash) for d in found] == [
        ("a", 1, "1"),
        ("b", 1, "1"),
        ("b", 2, "2"),
        ("b", 3, "3"),
    ]
    assert backend.definition("b", 2) == found[2]
    assert backend.definition("b", 0) is None
    assert backend.definition("b", 4) is None
    assert backend.definition("nope", 1) is None


def test_concurrent_deploys_never_share_a_version(backend: Backend) -> None:
    with ThreadPoolExecutor(16) as pool:
        stored = list(pool.map(lambda n: backend.deploy(definition(content_hash=f"h{n}"))[0], range(16)))
    assert sorted(d.version for d in stored) == list(range(1, 17))
    assert len(backend.definitions()) == 16


def test_cache_generation_starts_at_zero_and_bumps(backend: Backend) -> None:
    assert backend.cache_generation() == 0
    assert backend.bump_cache_generation() == 1
    assert backend.bump_cache_generation() == 2
    assert backend.cache_generation() == 2


# -- records round trip -----------------------------------------------------------------


def test_instance_round_trips_every_field(backend: Backend) -> None:
    state = {
        "version": 1,
        "tokens": [{"id": "t1", "at": "review", "loop": None}],
        "vars": {"n": 3, "f": 1.5, "big": 2**62, "s": "zoë 😀", "ok": True, "none": None, "list": [1, "2"]},
    }
    full = make_instance(
        backend, state=state, create_by="ann", app_name="rooms", ended=True, end_time=1_700_000_000_999, rev=7
    )
    bare = make_instance(backend, state={})
    backend.create_instance(full, [])
    backend.create_instance(bare, [])
    assert backend.instance(full.id) == full
    assert backend.instance(bare.id) == bare
    assert backend.instance(bare.id).end_time is None  # type: ignore[union-attr]
    assert backend.instance("nope") is None


def test_task_round_trips_every_field(backend: Backend) -> None:
    instance = make_instance(backend)
    full = make_task(
        backend,
        instance,
        name="Approve — ü",
        description="check the booking",
        create_by="ann",
        due_date=1_700_000_500_000,
        priority=80,
        assignee="bob",
        owner="cy",
        parent_task_id="parent-1",
        loadlink_entity_id="entity-9",
        loadlink_param="id=9",
        candidate_users=["bob", "cy"],
        candidate_groups=["clerks"],
        candidate_roles=["admin", "auditor"],
        form_key="form:approve",
        variables={"local": {"x": [1, 2]}, "flag": False},
    )
    bare = make_task(backend, instance, priority=0)
    backend.create_instance(instance, [full, bare])
    assert backend.task(full.id) == full
    assert backend.task(bare.id) == bare
    got = backend.task(bare.id)
    assert got is not None
    assert (got.due_date, got.assignee, got.owner, got.parent_task_id, got.form_key) == (None,) * 5
    assert (got.candidate_users, got.variables, got.priority) == ([], {}, 0)
    assert backend.task("nope") is None


def test_task_and_instance_reads_both(backend: Backend) -> None:
    instance, [task] = start(backend, {"candidate_groups": ["clerks"]})
    assert backend.task_and_instance(task.id) == (task, instance)
    assert backend.task_and_instance("nope") is None


def test_names_with_colons_odd_unicode_and_lone_surrogates_work(backend: Backend) -> None:
    odd = ["do:main\\user", "zoë 😀", "\ud800x", "a b*?[]{x}"]
    instance, [task] = start(backend, {"candidate_users": odd[:2], "candidate_groups": odd[2:]})
    assert backend.task(task.id) == task
    for name in odd[:2]:
        assert query(backend, users=(name,)) == [task.id]
    for name in odd[2:]:
        assert query(backend, groups=(name,)) == [task.id]
    backend.set_identity(Identity(odd[0], frozenset(odd[1:2]), frozenset(odd[2:])))
    assert backend.identity(odd[0]) == Identity(odd[0], frozenset(odd[1:2]), frozenset(odd[2:]))
    claimed = backend.claim(task.id, odd[2], who(groups=(odd[2],)))
    assert claimed.assignee == odd[2]
    assert todo(backend, odd[2]) == [task.id]
    assert query(backend, users=(odd[0],)) == []
    # an id that ends like another kind of key finds nothing and breaks nothing
    with pytest.raises(InstanceNotFound):
        backend.instance_tasks(f"{instance.id}:tasks")
    assert backend.instance(f"{instance.id}:tasks") is None


# -- instances and their tasks ----------------------------------------------------------


def test_instance_tasks_lists_active_tasks_oldest_first(backend: Backend) -> None:
    instance, tasks = start(
        backend,
        {"id": "t-c", "create_time": 30},
        {"id": "t-b", "create_time": 10},
        {"id": "t-a", "create_time": 30},
        {"id": "t-closed", "create_time": 5, "status": COMPLETED},
    )
    assert [t.id for t in backend.instance_tasks(instance.id)] == ["t-b", "t-a", "t-c"]
    assert backend.task("t-closed") == tasks[3]
    with pytest.raises(InstanceNotFound):
        backend.instance_tasks("nope")
    empty, _ = start(backend)
    assert backend.instance_tasks(empty.id) == []


def test_create_instance_indexes_every_active_task(backend: Backend) -> None:
    _, [assigned, queued, closed] = start(
        backend,
        {"assignee": "ann", "candidate_groups": ["clerks"]},
        {"candidate_users": ["bob"], "candidate_groups": ["clerks"], "candidate_roles": ["admin"]},
        {"candidate_users": ["bob"], "status": CANCELLED},
    )
    assert todo(backend, "ann") == [assigned.id]
    assert todo(backend, "bob") == [queued.id]
    assert query(backend, groups=("clerks",)) == [queued.id]
    assert query(backend, roles=("admin",)) == [queued.id]
    assert sorted(query(backend, groups=("clerks",), include_assigned=True)) == sorted([assigned.id, queued.id])
    assert closed.id not in query(backend, users=("bob",), include_assigned=True)


# -- claim and unclaim ------------------------------------------------------------------


def test_claim_makes_the_user_assignee_and_moves_the_task_between_lists(backend: Backend) -> None:
    _, [task] = start(backend, {"candidate_users": ["ann"], "candidate_groups": ["clerks"]})
    claimed = backend.claim(task.id, "bob", who(("bob",), ("clerks",)))
    assert claimed == replace(task, assignee="bob")
    assert backend.task(task.id) == claimed
    assert todo(backend, "bob") == [task.id]
    assert todo(backend, "ann") == []
    assert query(backend, groups=("clerks",)) == []
    assert query(backend, groups=("clerks",), include_assigned=True) == [task.id]
    assert query(backend, users=("ann",), include_assigned=True) == [task.id]


def test_claim_is_idempotent_for_the_assignee_and_refuses_others(backend: Backend) -> None:
    _, [task] = start(backend, {"candidate_users": ["ann", "bob"]})
    first = backend.claim(task.id, "ann", who(("ann",)))
    assert backend.claim(task.id, "ann", who(("ann",))) == first
    with pytest.raises(TaskAlreadyClaimed):
        backend.claim(task.id, "bob", who(("bob",)))
    with pytest.raises(TaskAlreadyClaimed):
        backend.claim(task.id, "bob", None)
    assert backend.task(task.id) == first


@pytest.mark.parametrize(
    ("principals", "allowed"),
    [
        (who(("ann",)), True),
        (who(("x",), ("clerks",)), True),
        (who(("x",), (), ("admin",)), True),
        (who(("x",), ("admin",), ("clerks",)), False),  # a group is not a role
        (who(("x",), ("other",), ("other",)), False),
        (who(), False),
        (None, True),  # no candidate check asked for
    ],
)
def test_claim_checks_candidates(backend: Backend, principals: Principals | None, allowed: bool) -> None:
    _, [task] = start(
        backend, {"candidate_users": ["ann"], "candidate_groups": ["clerks"], "candidate_roles": ["admin"]}
    )
    if allowed:
        assert backend.claim(task.id, "x", principals).assignee == "x"
    else:
        with pytest.raises(NotCandidate):
            backend.claim(task.id, "x", principals)
        assert backend.task(task.id) == task
        assert query(backend, users=("ann",)) == [task.id]


def test_claim_of_a_task_without_candidates_is_open_to_anyone(backend: Backend) -> None:
    _, [task] = start(backend, {})
    assert backend.claim(task.id, "x", who(("x",))).assignee == "x"


def test_claim_errors(backend: Backend) -> None:
    _, [done, cancelled] = start(backend, {"status": COMPLETED}, {"status": CANCELLED})
    with pytest.raises(TaskNotFound):
        backend.claim("nope", "ann", None)
    with pytest.raises(TaskNotActive):
        backend.claim(done.id, "ann", None)
    with pytest.raises(TaskNotActive):
        backend.claim(cancelled.id, "ann", None)


def test_unclaim_gives_the_task_back_to_its_candidates(backend: Backend) -> None:
    _, [task] = start(backend, {"candidate_groups": ["clerks"]})
    backend.claim(task.id, "ann", None)
    with pytest.raises(TaskAlreadyClaimed):
        backend.unclaim(task.id, "bob")
    released = backend.unclaim(task.id, "ann")
    assert released == task
    assert backend.task(task.id) == task
    assert todo(backend, "ann") == []
    assert query(backend, groups=("clerks",)) == [task.id]
    with pytest.raises(Conflict) as caught:
        backend.unclaim(task.id, "ann")
    assert caught.value.code == "TASK_NOT_CLAIMED"
    backend.claim(task.id, "bob", None)
    assert backend.unclaim(task.id, None).assignee is None  # no user: whoever holds it


def test_unclaim_errors(backend: Backend) -> None:
    _, [done] = start(backend, {"status": COMPLETED, "assignee": "ann"})
    with pytest.raises(TaskNotFound):
        backend.unclaim("nope", "ann")
    with pytest.raises(TaskNotActive):
        backend.unclaim(done.id, "ann")


# -- assign -----------------------------------------------------------------------------


def test_assign_one_user_makes_the_previous_assignee_owner(backend: Backend) -> None:
    _, [task] = start(backend, {"candidate_groups": ["clerks"], "owner": "zed"})
    first = backend.assign(task.id, ["ann"])
    assert (first.assignee, first.owner) == ("ann", "zed")  # nobody held it: owner kept
    second = backend.assign(task.id, ["bob"])
    assert (second.assignee, second.owner) == ("bob", "ann")
    same = backend.assign(task.id, ["bob"])
    assert (same.assignee, same.owner) == ("bob", "ann")
    assert backend.task(task.id) == same
    assert todo(backend, "ann") == []
    assert todo(backend, "bob") == [task.id]
    assert query(backend, groups=("clerks",)) == []


def test_assign_several_users_replaces_the_candidates_and_clears_the_assignee(backend: Backend) -> None:
    _, [task] = start(backend, {"candidate_users": ["ann"], "candidate_groups": ["clerks"], "assignee": "dee"})
    updated = backend.assign(task.id, ["bob", "cy", "bob"])
    assert updated.candidate_users == ["bob", "cy"]
    assert (updated.assignee, updated.owner) == (None, None)
    assert updated.candidate_groups == ["clerks"]
    assert backend.task(task.id) == updated
    assert todo(backend, "dee") == []
    assert todo(backend, "ann") == []
    assert todo(backend, "bob") == [task.id] and todo(backend, "cy") == [task.id]
    assert query(backend, groups=("clerks",)) == [task.id]


def test_assign_errors(backend: Backend) -> None:
    _, [done] = start(backend, {"status": COMPLETED})
    with pytest.raises(TaskNotFound):
        backend.assign("nope", ["ann"])
    with pytest.raises(TaskNotActive):
        backend.assign(done.id, ["ann"])
    with pytest.raises(TaskNotActive):
        backend.assign(done.id, ["ann", "bob"])


def test_assign_instance_assigns_every_active_task(backend: Backend) -> None:
    instance, [late, early, held, closed] = start(
        backend,
        {"create_time": 20, "candidate_groups": ["clerks"]},
        {"create_time": 10, "candidate_users": ["bob"]},
        {"create_time": 30, "assignee": "cy"},
        {"create_time": 5, "status": COMPLETED},
    )
    assert backend.assign_instance(instance.id, "ann") == [early.id, late.id, held.id]
    assert sorted(todo(backend, "ann")) == sorted([early.id, late.id, held.id])
    assert todo(backend, "bob") == [] and todo(backend, "cy") == []
    assert query(backend, groups=("clerks",)) == []
    assert backend.task(held.id).owner == "cy"  # type: ignore[union-attr]
    assert backend.task(closed.id) == closed
    with pytest.raises(InstanceNotFound):
        backend.assign_instance("nope", "ann")
    empty, _ = start(backend)
    assert backend.assign_instance(empty.id, "ann") == []


# -- apply_step -------------------------------------------------------------------------


def test_apply_step_completes_cancels_creates_and_writes_the_instance(backend: Backend) -> None:
    instance, [review, other, closed] = start(
        backend,
        {"candidate_groups": ["clerks"]},
        {"assignee": "bob", "candidate_roles": ["admin"]},
        {"status": COMPLETED},
    )
    approve = make_task(backend, instance, name="Approve", candidate_users=["cy"], priority=90)
    step = step_for(
        instance,
        created=[approve],
        cancelled=[other.id, closed.id, "unknown"],
        complete_task=review.id,
        completed_by="ann",
    )
    step.instance.state = {"tokens": [{"at": "approve"}], "vars": {"ok": True}}
    backend.apply_step(step)

    assert backend.instance(instance.id) == step.instance
    done = backend.task(review.id)
    assert done == replace(review, status=COMPLETED, end_time=step.now, completed_by="ann", assignee="ann")
    assert backend.task(other.id) == replace(other, status=CANCELLED, end_time=step.now)
    assert backend.task(closed.id) == closed
    assert backend.task(approve.id) == approve
    assert [t.id for t in backend.instance_tasks(instance.id)] == [approve.id]
    assert todo(backend, "cy") == [approve.id]
    for user in ("ann", "bob"):
        assert todo(backend, user) == []
    assert query(backend, groups=("clerks",), include_assigned=True) == []
    assert query(backend, roles=("admin",), include_assigned=True) == []


def test_apply_step_by_the_assignee_keeps_the_assignee(backend: Backend) -> None:
    instance, [task] = start(backend, {"assignee": "ann", "owner": "zed"})
    backend.apply_step(step_for(instance, complete_task=task.id, completed_by="ann"))
    assert backend.task(task.id) == replace(task, status=COMPLETED, end_time=1_700_000_009_000, completed_by="ann")
    assert todo(backend, "ann") == []


def test_apply_step_without_a_task_ends_the_instance(backend: Backend) -> None:
    instance, [first, second] = start(backend, {"candidate_users": ["ann"]}, {"assignee": "bob"})
    step = step_for(instance, cancelled=[first.id, second.id])
    step.instance.ended, step.instance.end_time = True, step.now
    backend.apply_step(step)
    assert backend.instance(instance.id) == step.instance
    assert backend.instance_tasks(instance.id) == []
    assert todo(backend, "ann") == [] and todo(backend, "bob") == []
    assert backend.task(first.id).status == CANCELLED  # type: ignore[union-attr]
    assert backend.task(second.id).completed_by is None  # type: ignore[union-attr]


def test_apply_step_twice_on_one_task_is_task_not_active(backend: Backend) -> None:
    instance, [task] = start(backend, {})
    backend.apply_step(step_for(instance, complete_task=task.id, completed_by="ann"))
    current = backend.instance(instance.id)
    assert current is not None and current.rev == 2
    with pytest.raises(TaskNotActive):
        backend.apply_step(step_for(current, complete_task=task.id, completed_by="ann"))


def apply_step_errors() -> list[tuple[str, type[Exception], Callable[[Instance, list[Task]], Step]]]:
    return [
        ("unknown instance", InstanceNotFound, lambda i, ts: step_for(replace(i, id="nope"))),
        ("stale revision", ConcurrentModification, lambda i, ts: step_for(replace(i, rev=0))),
        ("future revision", ConcurrentModification, lambda i, ts: step_for(replace(i, rev=5))),
        ("unknown task", TaskNotFound, lambda i, ts: step_for(i, complete_task="nope", completed_by="ann")),
        ("closed task", TaskNotActive, lambda i, ts: step_for(i, complete_task=ts[2].id, completed_by="ann")),
        ("held by another", TaskAlreadyClaimed, lambda i, ts: step_for(i, complete_task=ts[1].id, completed_by="ann")),
        ("held, nobody", TaskAlreadyClaimed, lambda i, ts: step_for(i, complete_task=ts[1].id, completed_by=None)),
    ]


@pytest.mark.parametrize(("case", "error", "build"), apply_step_errors(), ids=[c[0] for c in apply_step_errors()])
def test_apply_step_errors_write_nothing(
    backend: Backend, case: str, error: type[Exception], build: Callable[[Instance, list[Task]], Step]
) -> None:
    instance, tasks = start(
        backend,
        {"candidate_users": ["ann"], "candidate_groups": ["clerks"]},
        {"assignee": "bob", "candidate_roles": ["admin"]},
        {"status": COMPLETED, "candidate_users": ["cy"]},
    )
    step = build(instance, tasks)
    step.created = [make_task(backend, instance, candidate_users=["dee"])]
    step.cancelled = [tasks[0].id, tasks[1].id]
    step.instance.state = {"changed": True}
    before = snapshot(backend, [instance], [*tasks, *step.created])
    with pytest.raises(error):
        backend.apply_step(step)
    assert snapshot(backend, [instance], [*tasks, *step.created]) == before


# -- queries ----------------------------------------------------------------------------


def test_query_is_a_union_with_each_task_once(backend: Backend) -> None:
    _, [both, mine, group_only, role_only, others] = start(
        backend,
        {"candidate_users": ["ann"], "candidate_groups": ["clerks"], "candidate_roles": ["admin"]},
        {"assignee": "ann", "candidate_groups": ["clerks"]},
        {"candidate_groups": ["clerks"]},
        {"candidate_roles": ["admin"]},
        {"assignee": "bob", "candidate_users": ["ann"]},
    )
    found, total = backend.query_tasks(
        TaskQuery(frozenset({"ann"}), who(("ann",), ("clerks",), ("admin",)), sort="createTime")
    )
    assert sorted(t.id for t in found) == sorted([both.id, mine.id, group_only.id, role_only.id])
    assert total == 4
    assert query(backend, users=("ann",), include_assigned=True, size=10, sort="createTime").count(both.id) == 1
    assert others.id in query(backend, users=("ann",), include_assigned=True)
    assert others.id not in todo(backend, "ann")
    assert query(backend, groups=("nobody",)) == []
    assert backend.query_tasks(TaskQuery()) == ([], 0)


def test_query_sorts_and_pages_stably(backend: Backend) -> None:
    rows = [
        # id,  priority, create_time, due_date
        ("t1", 50, 300, None),
        ("t2", 90, 200, 5000),
        ("t3", 50, 100, 4000),
        ("t4", 10, 400, 4000),
        ("t5", 90, 200, None),
        ("t6", 50, 300, 6000),
    ]
    start(
        backend,
        *({"id": i, "priority": p, "create_time": c, "due_date": d, "candidate_groups": ["g"]} for i, p, c, d in rows),
    )

    def ids(**options: Any) -> list[str]:
        return query(backend, groups=("g",), **options)

    assert ids() == ["t2", "t5", "t3", "t1", "t6", "t4"]  # priority desc, createTime asc, id
    assert ids(order="asc") == ["t4", "t3", "t1", "t6", "t2", "t5"]
    assert ids(sort="createTime") == ["t3", "t2", "t5", "t1", "t6", "t4"]
    assert ids(sort="createTime", order="desc") == ["t4", "t1", "t6", "t2", "t5", "t3"]
    assert ids(sort="dueDate") == ["t3", "t4", "t2", "t6", "t5", "t1"]  # no due date last
    assert ids(sort="dueDate", order="desc") == ["t5", "t1", "t6", "t2", "t3", "t4"]
    found, total = backend.query_tasks(TaskQuery(candidates=who(groups=("g",)), start=2, size=3))
    assert [t.id for t in found] == ["t3", "t1", "t6"] and total == 6
    assert ids(start=5, size=10) == ["t4"]
    assert backend.query_tasks(TaskQuery(candidates=who(groups=("g",)), start=6))[0] == []
    assert backend.query_tasks(TaskQuery(candidates=who(groups=("g",)), start=6))[1] == 6


def test_query_returns_full_records(backend: Backend) -> None:
    _, [task] = start(backend, {"candidate_users": ["ann"], "variables": {"x": 1}, "due_date": 7})
    found, total = backend.query_tasks(TaskQuery(candidates=who(("ann",))))
    assert found == [task] and total == 1


# -- identity store ---------------------------------------------------------------------


def test_identity_round_trips_and_replaces(backend: Backend) -> None:
    assert backend.identity("ann") == Identity("ann")
    ann = Identity("ann", frozenset({"clerks", "managers"}), frozenset({"admin"}))
    backend.set_identity(ann)
    assert backend.identity("ann") == ann
    replaced = Identity("ann", frozenset({"auditors"}))
    backend.set_identity(replaced)
    assert backend.identity("ann") == replaced
    backend.set_identity(Identity("ann"))
    assert backend.identity("ann") == Identity("ann")


def test_identities_reads_several_in_order(backend: Backend) -> None:
    bob = Identity("bob", frozenset({"g"}), frozenset({"r"}))
    backend.set_identity(bob)
    assert backend.identities(["nobody", "bob", "bob"]) == [Identity("nobody"), bob, bob]
    assert backend.identities([]) == []
    assert backend.identities(iter(["bob"])) == [bob]


# -- races ------------------------------------------------------------------------------


@pytest.mark.slow
def test_claim_race_has_exactly_one_winner(backend: Backend) -> None:
    threads = 32
    barrier = threading.Barrier(threads)

    def claim(task_id: str, user: str) -> str:
        barrier.wait()
        try:
            return backend.claim(task_id, user, who((user,), ("clerks",))).assignee or "?"
        except TaskAlreadyClaimed:
            return ""

    with ThreadPoolExecutor(threads) as pool:
        for round_ in range(50):
            _, [task] = start(backend, {"candidate_groups": ["clerks"]})
            users = [f"u{round_}-{n}" for n in range(threads)]
            winners = [w for w in pool.map(lambda u, t=task.id: claim(t, u), users) if w]
            assert len(winners) == 1
            stored = backend.task(task.id)
            assert stored is not None and stored.assignee == winners[0]
            assert todo(backend, winners[0]) == [task.id]


@pytest.mark.slow
def test_step_race_has_exactly_one_winner(backend: Backend) -> None:
    barrier = threading.Barrier(2)

    def apply(step: Step) -> str:
        barrier.wait()
        try:
            backend.apply_step(step)
            return "won"
        except ConcurrentModification:
            return "lost"

    with ThreadPoolExecutor(2) as pool:
        for _ in range(25):
            instance, [a, b] = start(backend, {"candidate_users": ["ann"]}, {"candidate_users": ["ann"]})
            steps = [step_for(instance, complete_task=t.id, completed_by="ann") for t in (a, b)]
            assert sorted(pool.map(apply, steps)) == ["lost", "won"]
            stored = backend.instance(instance.id)
            assert stored is not None and stored.rev == 2
            assert len(backend.instance_tasks(instance.id)) == 1


# -- Redis only -------------------------------------------------------------------------


@pytest.fixture
def redis_backend() -> Iterator[Any]:
    backend = make_redis_backend()
    backend.clear()
    yield backend
    backend.clear()
    backend.close()


@pytest.mark.redis
def test_redis_keys_all_share_the_prefix_hash_tag(redis_backend: Any) -> None:
    start(redis_backend, {"assignee": "ann", "candidate_users": ["bob"], "candidate_groups": ["g"]})
    redis_backend.deploy(definition())
    redis_backend.set_identity(Identity("ann", frozenset({"g"}), frozenset({"r"})))
    redis_backend.bump_cache_generation()
    root = "{" + redis_backend.prefix + "}:"
    keys = list(redis_backend.client.scan_iter(match=f"*{redis_backend.prefix}*"))
    assert keys and all(k.startswith(root) for k in keys)
    assert redis_backend.key("task", "x") == root + "task:x"
    assert {k.split(":")[len(root.split(":")) - 1] for k in keys} == {
        "id-counter",
        "inst",
        "inst-tasks",
        "task",
        "assignee",
        "cand",
        "def",
        "def-versions",
        "def-keys",
        "user",
        "cache-generation",
    }


@pytest.mark.redis
def test_redis_clear_deletes_only_its_own_prefix() -> None:
    base = f"bpmtest:{uuid.uuid4().hex[:8]}"
    star, plain = make_redis_backend(base + "*"), make_redis_backend(base + "x")
    try:
        star.set_identity(Identity("ann", frozenset({"g"})))
        plain.set_identity(Identity("ann", frozenset({"g"})))
        star.clear()
        assert star.identity("ann") == Identity("ann")
        assert plain.identity("ann").groups == {"g"}
    finally:
        for backend in (star, plain):
            backend.clear()
            backend.close()


@pytest.mark.redis
def test_redis_url_prefix_parameter_and_redaction() -> None:
    from backends.redis import RedisBackend, split_prefix

    assert split_prefix("redis://h:1/0?prefix=a%3Ab&db=2&password=p%2Bq") == (
        "redis://h:1/0?db=2&password=p%2Bq",
        "a:b",
    )
    assert split_prefix("unix:///tmp/r.sock?db=1") == ("unix:///tmp/r.sock?db=1", None)
    assert split_prefix("redis://h:1/0?prefix=p") == ("redis://h:1/0", "p")
    assert split_prefix("rediss://h:1/0") == ("rediss://h:1/0", None)
    url_prefix = f"bpmtest:{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(f"{REDIS_URL}?prefix={url_prefix}")
    try:
        assert backend.prefix == url_prefix
        assert RedisBackend(f"{REDIS_URL}?prefix=other", prefix="explicit").prefix == "explicit"
        assert RedisBackend(REDIS_URL).prefix == "bpm"
        assert RedisBackend("redis://:secret@127.0.0.1:6379/0").url == "redis://:***@127.0.0.1:6379/0"
        assert RedisBackend("redis://me:secret@127.0.0.1:6379/0").url == "redis://me:***@127.0.0.1:6379/0"
        with pytest.raises(ValueError):
            RedisBackend(REDIS_URL, prefix="a{b}")
    finally:
        backend.close()


@pytest.mark.redis
def test_redis_ids_are_unique_across_backends_sharing_a_store() -> None:
    prefix = f"bpmtest:{uuid.uuid4().hex[:8]}"
    first, second = make_redis_backend(prefix), make_redis_backend(prefix)
    try:
        ids = [b.new_id() for _ in range(150) for b in (first, second)]
        counters = [i.split("-")[0] for i in ids]
        assert len(set(counters)) == len(counters) == 300
    finally:
        first.clear()
        first.close()
        second.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.redis
def test_redis_unreachable_is_backend_unavailable_quickly() -> None:
    from backends.redis import RedisBackend

    backend = RedisBackend(f"redis://127.0.0.1:{closed_port()}/0", prefix="bpmtest:down", socket_timeout=0.5)
    calls: list[Callable[[], Any]] = [
        backend.ping,
        backend.new_id,
        lambda: backend.query_tasks(TaskQuery(frozenset({"ann"}))),
        lambda: backend.claim("t", "ann", None),
        lambda: backend.apply_step(step_for(make_instance(backend, id="i"))),
        lambda: backend.create_instance(make_instance(backend, id="i"), []),
        lambda: backend.identity("ann"),
        backend.definitions,
        backend.cache_generation,
    ]
    for call in calls:
        began = time.monotonic()
        with pytest.raises(BackendUnavailable, match="the Redis backend is unreachable"):
            call()
        assert time.monotonic() - began < 1.5
    backend.close()


@pytest.mark.redis
def test_redis_blackholed_server_times_out_within_socket_timeout() -> None:
    from backends.redis import RedisBackend

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        backend = RedisBackend(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", socket_timeout=0.3)
        began = time.monotonic()
        with pytest.raises(BackendUnavailable):
            backend.ping()
        assert time.monotonic() - began < 1.5
        backend.close()


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_redis_recovers_after_a_server_restart(tmp_path: Any) -> None:
    from backends.redis import RedisBackend

    port = closed_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]

    def launch() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return server
            except OSError:
                time.sleep(0.05)
        server.kill()
        pytest.fail("redis-server did not start")

    server = launch()
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5, health_check_interval=0)
    try:
        _, [task] = start(backend, {"candidate_users": ["ann"]})
        assert backend.claim(task.id, "ann", None).assignee == "ann"  # scripts loaded
        server.terminate()
        server.wait(5)
        with pytest.raises(BackendUnavailable):
            backend.claim(task.id, "ann", None)
        server = launch()  # empty: no persistence, no scripts loaded
        _, [task] = start(backend, {"candidate_users": ["ann"]})
        assert backend.claim(task.id, "ann", who(("ann",))).assignee == "ann"
        assert todo(backend, "ann") == [task.id]
    finally:
        backend.close()
        server.terminate()
        server.wait(5)
