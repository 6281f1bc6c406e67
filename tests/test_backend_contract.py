"""The backend contract of backends/base.py, run against every backend.

Each test goes through the ``backend`` fixture of conftest.py (memory and Redis
in turn); the few Redis-only tests at the end cover keys, URLs and outages.
"""

from __future__ import annotations

import contextlib
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
    ExternalTaskRecord,
    Identity,
    Instance,
    Principals,
    Step,
    SubscriptionIndex,
    Task,
    TaskQuery,
    id_scope,
    start_timer_member,
)
from bpm.errors import (
    BackendUnavailable,
    ConcurrentModification,
    Conflict,
    ExternalTaskNotFound,
    InstanceNotFound,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)
from tests.conftest import REDIS_URL, make_redis_backend

ID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)-[0-9a-z]+$")


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
        "id": backend.new_id(near=instance.id),
        "name": "Review",
        "instance_id": instance.id,
        "definition_id": instance.definition_id,
        "process_name": instance.process_name,
        "create_time": 1_700_000_000_000,
        "task_definition_key": "review",
    }
    values.update(overrides)
    return Task(**values)


def create(
    backend: Backend, instance: Instance, tasks: list[Task], history: list[dict[str, Any]] | None = None
) -> None:
    """Store a new instance with its first tasks and history (at ``instance.rev``, stepping up to it)."""
    first = replace(instance, rev=1)
    backend.apply_steps([Step(instance=first, created=list(tasks), history=list(history or []), new=True)])
    for rev in range(2, instance.rev + 1):
        backend.apply_steps([Step(instance=replace(instance, rev=rev))])


def start(backend: Backend, *task_overrides: dict[str, Any], **instance_overrides: Any) -> tuple[Instance, list[Task]]:
    """Store a new instance with one task per dict of overrides."""
    instance = make_instance(backend, **instance_overrides)
    tasks = [make_task(backend, instance, **o) for o in task_overrides]
    create(backend, instance, tasks)
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


@pytest.fixture
def one_partition(backend: Backend) -> Iterator[None]:
    """Every id the test makes in one partition: for writes of several instances at once
    (a parent and the child it calls always share a partition)."""
    with id_scope(backend.new_id()):
        yield


# -- ids, health, clear -----------------------------------------------------------------


def test_new_id_is_short_carries_its_partition_and_is_unique_across_threads(backend: Backend) -> None:
    def many(_: int) -> list[str]:
        return [backend.new_id() for _ in range(250)]

    with ThreadPoolExecutor(8) as pool:
        ids = [i for chunk in pool.map(many, range(8)) for i in chunk]
    assert len(set(ids)) == len(ids) == 2000
    assert all(ID_PATTERN.match(i) and len(i) <= 10 for i in ids)
    partitions = [int(i.split("-")[0]) for i in ids]
    assert set(partitions) == set(range(16))  # round-robin spreads new instances
    assert max(partitions.count(p) for p in range(16)) - min(partitions.count(p) for p in range(16)) <= 8


def test_ids_made_near_an_instance_or_in_its_scope_share_its_partition(backend: Backend) -> None:
    instance_id = backend.new_id()
    assert all(backend.new_id(near=instance_id).split("-")[0] == instance_id.split("-")[0] for _ in range(40))
    with id_scope(instance_id):
        assert {backend.new_id().split("-")[0] for _ in range(40)} == {instance_id.split("-")[0]}
    assert len({backend.new_id().split("-")[0] for _ in range(40)}) > 1


def test_a_write_across_partitions_is_refused_before_any_write(backend: Backend) -> None:
    instance = make_instance(backend)
    stranger = backend.new_id()
    while stranger.split("-")[0] == instance.id.split("-")[0]:
        stranger = backend.new_id()
    with pytest.raises(ValueError, match="partition"):
        backend.apply_steps([Step(instance=instance, new=True, created=[make_task(backend, instance, id=stranger)])])
    assert backend.instance(instance.id) is None
    assert backend.task(stranger) is None


def test_ids_not_made_here_are_simply_unknown(backend: Backend) -> None:
    for odd in ("nope", "99999-1", "0-", "-1", "01-2", "1-x-y", "7-\udcff"):
        assert backend.task(odd) is None
        assert backend.instance(odd) is None
        with pytest.raises(TaskNotFound):
            backend.claim(odd, "ann", None)
        with pytest.raises(InstanceNotFound):
            backend.instance_tasks(odd)


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
    create(backend, full, [])
    create(backend, bare, [])
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
    create(backend, instance, [full, bare])
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
    anchor = backend.new_id()
    p = anchor.split("-")[0]
    with id_scope(anchor):
        instance, tasks = start(
            backend,
            {"id": f"{p}-c", "create_time": 30},
            {"id": f"{p}-b", "create_time": 10},
            {"id": f"{p}-a", "create_time": 30},
            {"id": f"{p}-closed", "create_time": 5, "status": COMPLETED},
        )
    assert [t.id for t in backend.instance_tasks(instance.id)] == [f"{p}-b", f"{p}-a", f"{p}-c"]
    assert backend.task(f"{p}-closed") == tasks[3]
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


def test_claim_as_stored_checks_the_identity_store_at_the_claim(backend: Backend) -> None:
    """The identity store's groups and roles are read by the claim itself (on one Redis, in
    its script): a change to them applies to the next claim."""
    candidates = {"candidate_users": ["carl"], "candidate_groups": ["clerks"], "candidate_roles": ["admin"]}
    _, [by_group, by_role, by_name, refused, open_task] = start(
        backend, candidates, candidates, candidates, candidates, {}
    )
    backend.set_identity(Identity("ann", frozenset({"clerks"})))
    backend.set_identity(Identity("dora", frozenset({"admin"}), frozenset({"admin"})))
    assert backend.claim_as_stored(by_group.id, "ann").assignee == "ann"
    assert backend.claim_as_stored(by_role.id, "dora").assignee == "dora"
    assert backend.claim_as_stored(by_name.id, "carl").assignee == "carl"  # no identity stored
    assert backend.claim_as_stored(open_task.id, "nobody").assignee == "nobody"
    backend.set_identity(Identity("ann", frozenset({"other"}), frozenset({"clerks"})))  # a role is not a group
    for user in ("ann", "bob"):
        with pytest.raises(NotCandidate):
            backend.claim_as_stored(refused.id, user)
    assert backend.task(refused.id) == refused
    assert backend.claim_as_stored(by_group.id, "ann").assignee == "ann"  # idempotent for the assignee
    with pytest.raises(TaskAlreadyClaimed):
        backend.claim_as_stored(by_group.id, "carl")


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
    backend.apply_steps([step])

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
    backend.apply_steps([step_for(instance, complete_task=task.id, completed_by="ann")])
    assert backend.task(task.id) == replace(task, status=COMPLETED, end_time=1_700_000_009_000, completed_by="ann")
    assert todo(backend, "ann") == []


def test_apply_step_without_a_task_ends_the_instance(backend: Backend) -> None:
    instance, [first, second] = start(backend, {"candidate_users": ["ann"]}, {"assignee": "bob"})
    step = step_for(instance, cancelled=[first.id, second.id])
    step.instance.ended, step.instance.end_time = True, step.now
    backend.apply_steps([step])
    assert backend.instance(instance.id) == step.instance
    assert backend.instance_tasks(instance.id) == []
    assert todo(backend, "ann") == [] and todo(backend, "bob") == []
    assert backend.task(first.id).status == CANCELLED  # type: ignore[union-attr]
    assert backend.task(second.id).completed_by is None  # type: ignore[union-attr]


def test_apply_step_twice_on_one_task_is_task_not_active(backend: Backend) -> None:
    instance, [task] = start(backend, {})
    backend.apply_steps([step_for(instance, complete_task=task.id, completed_by="ann")])
    current = backend.instance(instance.id)
    assert current is not None and current.rev == 2
    with pytest.raises(TaskNotActive):
        backend.apply_steps([step_for(current, complete_task=task.id, completed_by="ann")])


def apply_step_errors() -> list[tuple[str, type[Exception], Callable[[Instance, list[Task]], Step]]]:
    return [
        ("unknown instance", InstanceNotFound, lambda i, ts: step_for(replace(i, id=i.id.split("-")[0] + "-nope"))),
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
        backend.apply_steps([step])
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
    anchor = backend.new_id()
    head = anchor.split("-")[0] + "-"  # the tasks' ids in their instance's partition
    with id_scope(anchor):
        start(
            backend,
            *(
                {"id": head + i, "priority": p, "create_time": c, "due_date": d, "candidate_groups": ["g"]}
                for i, p, c, d in rows
            ),
        )

    def ids(**options: Any) -> list[str]:
        return [i.removeprefix(head) for i in query(backend, groups=("g",), **options)]

    assert ids() == ["t2", "t5", "t3", "t1", "t6", "t4"]  # priority desc, createTime asc, id
    assert ids(order="asc") == ["t4", "t3", "t1", "t6", "t2", "t5"]
    assert ids(sort="createTime") == ["t3", "t2", "t5", "t1", "t6", "t4"]
    assert ids(sort="createTime", order="desc") == ["t4", "t1", "t6", "t2", "t5", "t3"]
    assert ids(sort="dueDate") == ["t3", "t4", "t2", "t6", "t5", "t1"]  # no due date last
    assert ids(sort="dueDate", order="desc") == ["t5", "t1", "t6", "t2", "t3", "t4"]
    found, total = backend.query_tasks(TaskQuery(candidates=who(groups=("g",)), start=2, size=3))
    assert [t.id.removeprefix(head) for t in found] == ["t3", "t1", "t6"] and total == 6
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
def test_claim_as_stored_race_has_exactly_one_winner(backend: Backend) -> None:
    threads = 16
    barrier = threading.Barrier(threads)
    users = [f"u{n}" for n in range(threads)]
    for user in users:
        backend.set_identity(Identity(user, frozenset({"clerks"})))

    def claim(task_id: str, user: str) -> str:
        barrier.wait()
        try:
            return backend.claim_as_stored(task_id, user).assignee or "?"
        except TaskAlreadyClaimed:
            return ""

    with ThreadPoolExecutor(threads) as pool:
        for _ in range(20):
            _, [task] = start(backend, {"candidate_groups": ["clerks"]})
            winners = [w for w in pool.map(lambda u, t=task.id: claim(t, u), users) if w]
            assert len(winners) == 1
            stored = backend.task(task.id)
            assert stored is not None and stored.assignee == winners[0]


@pytest.mark.slow
def test_step_race_has_exactly_one_winner(backend: Backend) -> None:
    barrier = threading.Barrier(2)

    def apply(step: Step) -> str:
        barrier.wait()
        try:
            backend.apply_steps([step])
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


def slot_of(key: str) -> int:
    from redis.crc import key_slot

    return key_slot(key.encode())


@pytest.mark.redis
def test_redis_keys_of_an_instance_share_its_partition_slot_and_the_rest_the_global_slot(
    redis_backend: Any,
) -> None:
    instance, [task] = start(redis_backend, {"assignee": "ann", "candidate_users": ["bob"], "candidate_groups": ["g"]})
    redis_backend.deploy(definition())
    redis_backend.set_identity(Identity("ann", frozenset({"g"}), frozenset({"r"})))
    redis_backend.bump_cache_generation()
    prefix = redis_backend.prefix
    keys = set(redis_backend.client.scan_iter(match=f"{prefix}*")) | set(
        redis_backend.client.scan_iter(match=f"{{{prefix}}}*")
    )
    partition = redis_backend.partition(instance.id)
    root = redis_backend.pkey(partition)
    assert redis_backend.partition(task.id) == partition
    mine = {k for k in keys if k.startswith(root)}
    global_ = {k for k in keys if k.startswith("{" + prefix + "}:")}
    assert mine | global_ == keys
    assert {slot_of(k) for k in mine} == {slot_of(root + "x")}
    assert {slot_of(k) for k in global_} == {slot_of(redis_backend.key("x"))}
    assert redis_backend.ikey(task.id, "task") == root + "task:" + task.id
    assert {k.removeprefix(root).split(":")[0] for k in mine} == {
        "ids", "inst", "task", "assignee", "qa", "pqa", "done", "inst-list"
    }  # fmt: skip
    assert {k.removeprefix(redis_backend.key()).split(":")[0] for k in global_} == {
        "meta",
        "def",
        "def-versions",
        "def-keys",
        "user",
        "cache-generation",
        "done",  # deploy and set_identity are scripts that write: see backends/lua/_once.lua
    }


@pytest.mark.redis
def test_redis_partition_slots_spread_evenly_over_three_masters(redis_backend: Any) -> None:
    ranges = [(0, 5460), (5461, 10922), (10923, 16383)]  # redis-cli --cluster create with 3 masters
    slots = [slot_of(redis_backend.pkey(p, "x")) for p in range(redis_backend.partitions)]
    assert len(set(slots)) == redis_backend.partitions
    shares = [sum(lo <= s <= hi for s in slots) for lo, hi in ranges]
    assert min(shares) >= 5 and max(shares) <= 6


@pytest.mark.redis
def test_redis_partition_count_is_fixed_at_first_use(redis_backend: Any) -> None:
    from backends.redis import RedisBackend
    from backends.redis_scripts import PartitionCountMismatch

    redis_backend.new_id()
    same = RedisBackend(f"{REDIS_URL}?partitions=16", prefix=redis_backend.prefix)
    same.close()
    with pytest.raises(PartitionCountMismatch, match=r"set up with 16 partitions.*partitions=16"):
        RedisBackend(f"{REDIS_URL}?partitions=8", prefix=redis_backend.prefix)
    other = RedisBackend(f"{REDIS_URL}?partitions=4", prefix=redis_backend.prefix + "-other")
    try:
        assert {other.new_id().split("-")[0] for _ in range(20)} == {"0", "1", "2", "3"}
    finally:
        other.clear()
        other.close()


@pytest.mark.redis
def test_redis_health_check_reads_every_partition(redis_backend: Any) -> None:
    assert redis_backend.health_check()["partitions"] == 16


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
        assert len(set(ids)) == len(ids) == 300
        third = make_redis_backend(prefix)  # a restart: new blocks, never an id seen before
        assert not {third.new_id() for _ in range(300)} & set(ids)
        third.close()
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
        lambda: backend.apply_steps([step_for(make_instance(backend, id="i"))]),
        lambda: backend.instance_tasks("i"),
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


# -- history (audit trail) ----------------------------------------------------------------


def audit(kind: str, user: str | None = "ann", actor: str | None = "ann", **extra: Any) -> dict[str, Any]:
    """An audit entry as the runtime builds it."""
    return {"time": 1_700_000_001_000, "type": kind, "user": user, "actor": actor, **extra}


def task_fields(task: Task) -> dict[str, Any]:
    return {"taskId": task.id, "taskName": task.name, "elementId": task.task_definition_key}


def test_history_starts_with_the_entries_given_at_creation(backend: Backend) -> None:
    instance = make_instance(backend)
    started = audit("instance.started", definitionId="proc:1")
    create(backend, instance, [], [started])
    assert backend.history(instance.id) == [started]
    bare, _ = start(backend)
    assert backend.history(bare.id) == []
    with pytest.raises(InstanceNotFound):
        backend.history("nope")


def test_claim_and_unclaim_append_their_entry_with_the_task_fields(backend: Backend) -> None:
    instance, [task] = start(backend, {"candidate_users": ["ann"]})
    backend.claim(task.id, "ann", who(("ann",)), audit=audit("task.claimed"))
    backend.claim(task.id, "ann", who(("ann",)), audit=audit("task.claimed"))  # a repeat changes nothing
    backend.unclaim(task.id, "ann", audit=audit("task.unclaimed"))
    assert backend.history(instance.id) == [
        {**audit("task.claimed"), **task_fields(task)},
        {**audit("task.unclaimed"), **task_fields(task)},
    ]


def test_failed_claims_and_unclaims_append_nothing(backend: Backend) -> None:
    instance, [task] = start(backend, {"candidate_users": ["ann"]})
    with pytest.raises(NotCandidate):
        backend.claim(task.id, "bob", who(("bob",)), audit=audit("task.claimed", "bob", "bob"))
    with pytest.raises(Conflict):
        backend.unclaim(task.id, "ann", audit=audit("task.unclaimed"))
    backend.claim(task.id, "ann", None)  # no audit asked for
    with pytest.raises(TaskAlreadyClaimed):
        backend.claim(task.id, "bob", None, audit=audit("task.claimed", "bob", "bob"))
    with pytest.raises(TaskAlreadyClaimed):
        backend.unclaim(task.id, "bob", audit=audit("task.unclaimed", "bob", "bob"))
    assert backend.history(instance.id) == []


def test_assign_records_the_previous_assignee_and_the_owner(backend: Backend) -> None:
    instance, [task] = start(backend, {"owner": "zed"})
    backend.assign(task.id, ["ann"], audit=audit("task.assigned", "ann", "boss"))
    backend.assign(task.id, ["bob"], audit=audit("task.assigned", "bob", "boss"))
    backend.assign(task.id, ["bob"], audit=audit("task.assigned", "bob", "boss"))  # no change: no entry
    several = audit("task.delegated", None, "boss", candidateUsers=["cy", "dee"])
    backend.assign(task.id, ["cy", "dee"], audit=several)
    fields = task_fields(task)
    assert backend.history(instance.id) == [
        {**audit("task.assigned", "ann", "boss"), **fields, "previousAssignee": None, "owner": "zed"},
        {**audit("task.assigned", "bob", "boss"), **fields, "previousAssignee": "ann", "owner": "ann"},
        {**several, **fields, "previousAssignee": "bob", "owner": "ann"},
    ]


def test_assign_instance_appends_one_entry_per_changed_task(backend: Backend) -> None:
    instance, [first, held, mine] = start(
        backend, {"create_time": 10}, {"create_time": 20, "assignee": "cy"}, {"create_time": 30, "assignee": "ann"}
    )
    entry = audit("task.assigned", "ann", "boss")
    backend.assign_instance(instance.id, "ann", audit=entry)
    history = backend.history(instance.id)
    assert sorted(history, key=lambda e: e["taskId"]) == sorted(
        [
            {**entry, **task_fields(first), "previousAssignee": None, "owner": None},
            {**entry, **task_fields(held), "previousAssignee": "cy", "owner": "cy"},
        ],
        key=lambda e: e["taskId"],
    )
    assert mine.id not in {e["taskId"] for e in history}


def test_apply_step_appends_its_history_and_a_failed_step_appends_nothing(backend: Backend) -> None:
    instance, [task] = start(backend, {})
    done = {**audit("task.completed"), **task_fields(task)}
    entered = {"time": 1, "type": "element.entered", "elementId": "next", "elementType": "userTask"}
    backend.apply_steps([step_for(instance, complete_task=task.id, completed_by="ann", history=[done, entered])])
    with pytest.raises(ConcurrentModification):
        backend.apply_steps([step_for(instance, history=[audit("instance.cancelled", None, "boss")])])
    assert backend.history(instance.id) == [done, entered]


def test_history_entries_keep_odd_strings(backend: Backend) -> None:
    odd = 'q"uo\\te/sl\u00e9\u202e\U0001f600\u0000\n\ud800'
    instance, [task] = start(backend, {"name": odd, "task_definition_key": odd, "owner": odd})
    backend.claim(task.id, odd, None, audit=audit("task.claimed", odd, odd, note=odd))
    backend.assign(task.id, ["ann"], audit=audit("task.assigned", "ann", odd))
    claimed, assigned = backend.history(instance.id)
    expected = {**audit("task.claimed", odd, odd, note=odd), "taskId": task.id, "taskName": odd, "elementId": odd}
    assert claimed == expected
    assert (assigned["previousAssignee"], assigned["owner"], assigned["actor"]) == (odd, odd, odd)


def test_claim_race_records_exactly_one_claim(backend: Backend) -> None:
    instance, [task] = start(backend, {})
    barrier = threading.Barrier(8)

    def claim(user: str) -> None:
        barrier.wait()
        with contextlib.suppress(TaskAlreadyClaimed):
            backend.claim(task.id, user, None, audit=audit("task.claimed", user, user))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(claim, [f"u{i}" for i in range(8)]))
    [entry] = backend.history(instance.id)
    assert entry["user"] == backend.task(task.id).assignee  # type: ignore[union-attr]


@pytest.mark.redis
def test_redis_history_is_one_list_per_instance(redis_backend: Any) -> None:
    instance = make_instance(redis_backend)
    create(redis_backend, instance, [], [audit("instance.started")])
    key = redis_backend.ikey(instance.id, "history")
    assert key == redis_backend.pkey(redis_backend.partition(instance.id)) + "history:" + instance.id
    assert redis_backend.client.type(key) == "list"
    assert redis_backend.client.llen(key) == 1


# -- events, timers and external tasks -----------------------------------------------------

LOCK = 60_000
T0 = 1_700_000_000_000


def make_external(backend: Backend, instance: Instance, **overrides: Any) -> ExternalTaskRecord:
    values: dict[str, Any] = {
        "id": backend.new_id(near=instance.id),
        "topic": "invoice",
        "instance_id": instance.id,
        "definition_id": instance.definition_id,
        "process_key": instance.process_key,
        "element_id": "send_invoice",
        "name": "Send invoice",
        "kind": "serviceTask",
        "create_time": T0,
    }
    values.update(overrides)
    return ExternalTaskRecord(**values)


def with_externals(backend: Backend, *overrides: dict[str, Any]) -> tuple[Instance, list[ExternalTaskRecord]]:
    """A stored instance (rev 2) whose last step created one external task per dict of overrides."""
    instance, _ = start(backend)
    externals = [make_external(backend, instance, **o) for o in overrides]
    step = step_for(instance, externals=externals)
    backend.apply_steps([step])
    return step.instance, externals


def new_step(backend: Backend, **fields: Any) -> Step:
    """A step creating a new instance (rev 1)."""
    return Step(instance=make_instance(backend), new=True, now=T0, **fields)


def timer(instance: Instance, sub_id: str, due: int) -> SubscriptionIndex:
    return SubscriptionIndex(instance.id, sub_id, "timer", due=due)


def named(instance: Instance, sub_id: str, kind: str, name: str) -> SubscriptionIndex:
    return SubscriptionIndex(instance.id, sub_id, kind, name=name)


def fetched(
    backend: Backend, now: int, worker: str = "w1", topics: tuple[str, ...] = ("invoice",), n: int = 50
) -> list[str]:
    """The ids fetch_and_lock hands ``worker`` (and locks for it)."""
    return [e.id for e in backend.fetch_and_lock(worker, dict.fromkeys(topics, LOCK), n, now)]


def event_snapshot(backend: Backend, instances: list[Instance], externals: list[str]) -> tuple[Any, ...]:
    """Everything of events and external tasks a failed write must leave untouched."""
    return (
        backend.instances([i.id for i in instances]),
        [backend.external_task(e) for e in externals],
        [[e.id for e in backend.instance_externals(i.id)] for i in instances],
        [backend.history(i.id) if backend.instance(i.id) else None for i in instances],
        backend.due_timers(2**52, 1000),
        backend.subscriptions("message", "order"),
        backend.subscriptions("signal", "alarm"),
    )


def test_external_task_round_trips_every_field(backend: Backend) -> None:
    instance, _ = start(backend)
    odd = 'zoë 😀 q"uo\\te\u0000\n\ud800'
    full = make_external(
        backend,
        instance,
        topic=odd,
        name=odd,
        retries=7,
        priority=-3,
        worker=odd,
        lock_expiry=T0 + 5,
        available_at=T0 + 5,
        error_message=odd,
        error_details="trace\n" * 3,
        incident=True,
        business_key="order-42",
        variables={"big": 2**62, "f": 1.5, "none": None, "list": [1, "2", {"x": odd}], "ok": False},
    )
    closed = make_external(backend, instance, status=COMPLETED, end_time=T0 + 9, worker="w", lock_expiry=T0)
    bare = make_external(backend, instance, retries=0, priority=0)
    backend.apply_steps([step_for(instance, externals=[full, closed, bare])])
    for ext in (full, closed, bare):
        assert backend.external_task(ext.id) == ext
    got = backend.external_task(bare.id)
    assert got is not None
    assert (got.worker, got.lock_expiry, got.error_message, got.error_details, got.end_time) == (None,) * 5
    assert (got.incident, got.variables, got.retries, got.available_at, got.business_key) == (False, {}, 0, 0, "")
    assert isinstance(got.available_at, int) and isinstance(got.incident, bool)
    assert sorted(e.id for e in backend.instance_externals(instance.id)) == sorted([full.id, bare.id])
    assert backend.external_task("nope") is None


def test_instance_business_key_and_parent_round_trip(backend: Backend) -> None:
    parent = make_instance(backend, business_key="order-42 😀")
    child = make_instance(backend, business_key="", parent_id=parent.id)
    create(backend, parent, [])
    backend.apply_steps([Step(instance=child, new=True, now=T0)])
    assert backend.instance(parent.id) == parent
    assert backend.instance(parent.id).parent_id is None  # type: ignore[union-attr]
    assert backend.instance(child.id) == child
    assert backend.instances([child.id, "nope", parent.id, child.id]) == [child, None, parent, child]
    assert backend.instances([]) == []


def test_apply_steps_new_creates_the_instance_with_everything_of_its_step(backend: Backend) -> None:
    entered = {"time": T0, "type": "instance.started"}
    step = new_step(backend, history=[entered])
    step.created = [make_task(backend, step.instance, candidate_users=["ann"])]
    step.externals = [make_external(backend, step.instance)]
    step.subscribed = [timer(step.instance, "e1", T0 + 100), named(step.instance, "e2", "message", "order")]
    backend.apply_steps([step])
    assert backend.instance(step.instance.id) == step.instance
    assert backend.task(step.created[0].id) == step.created[0]
    assert todo(backend, "ann") == [step.created[0].id]
    assert backend.instance_externals(step.instance.id) == step.externals
    assert backend.history(step.instance.id) == [entered]
    assert backend.due_timers(T0 + 100) == [(f"inst|{step.instance.id}|e1", T0 + 100)]
    assert backend.subscriptions("message", "order") == [(step.instance.id, "e2")]


@pytest.mark.usefixtures("one_partition")
def test_apply_steps_new_with_a_known_id_is_a_conflict_and_writes_nothing(backend: Backend) -> None:
    existing, _ = start(backend)
    first = new_step(backend)
    again = Step(instance=replace(existing, state={"other": True}), new=True, now=T0)
    again.externals = [make_external(backend, existing)]
    before = event_snapshot(backend, [existing, first.instance], [again.externals[0].id])
    with pytest.raises(Conflict) as caught:
        backend.apply_steps([first, again])
    assert caught.value.code == "INSTANCE_EXISTS"
    with pytest.raises(Conflict):
        backend.apply_steps([first, replace(first, instance=replace(first.instance, state={}))])
    assert event_snapshot(backend, [existing, first.instance], [again.externals[0].id]) == before
    with pytest.raises(ValueError):
        backend.apply_steps([Step(instance=make_instance(backend, rev=2), new=True)])


def test_apply_steps_checks_two_steps_of_one_instance_in_order(backend: Backend) -> None:
    instance, _ = start(backend)
    second = step_for(instance)
    third = step_for(second.instance)
    with pytest.raises(ConcurrentModification):
        backend.apply_steps([second, step_for(instance)])
    assert backend.instance(instance.id) == instance
    backend.apply_steps([second, third])
    assert backend.instance(instance.id) == third.instance


def failing_second_steps() -> list[tuple[str, type[Exception], Callable[[Instance, Task, str], Step]]]:
    """(case, error, build(other instance, its task held by bob, its external locked by w1))."""
    return [
        ("stale revision", ConcurrentModification, lambda i, t, e: step_for(replace(i, rev=i.rev - 1))),
        ("unknown instance", InstanceNotFound, lambda i, t, e: step_for(replace(i, id=i.id.split("-")[0] + "-nope"))),
        ("task held by another", TaskAlreadyClaimed, lambda i, t, e: step_for(i, complete_task=t.id)),
        ("unknown external", ExternalTaskNotFound, lambda i, t, e: step_for(i, complete_external="nope")),
        ("lock lost", Conflict, lambda i, t, e: step_for(i, complete_external=e, external_worker="w2")),
        ("no worker", Conflict, lambda i, t, e: step_for(i, complete_external=e)),
        ("existing id", Conflict, lambda i, t, e: Step(instance=replace(i, rev=1), new=True)),
    ]


@pytest.mark.parametrize(("case", "error", "build"), failing_second_steps(), ids=[c[0] for c in failing_second_steps()])
def test_apply_steps_failing_in_a_later_step_writes_nothing_of_the_earlier(
    backend: Backend, case: str, error: type[Exception], build: Callable[[Instance, Task, str], Step]
) -> None:
    # one write is one partition: every instance of this test in the anchor's
    with id_scope(backend.new_id()):
        parent, [review] = start(backend, {"candidate_users": ["ann"]})
        parent, [running] = with_externals(backend, {})
        other, [held] = start(backend, {"assignee": "bob"})
        other, [locked] = with_externals(backend, {"topic": "locked"})
        spare = backend.new_id()
        create(backend, replace(other, id=spare), [])
        assert fetched(backend, T0, "w1", ("locked",)) == [locked.id]
        other = backend.instance(other.id)  # type: ignore[assignment]
        parent_step = step_for(
            parent,
            created=[make_task(backend, parent, candidate_users=["cy"])],
            externals=[make_external(backend, parent, topic="fresh")],
            externals_cancelled=[running.id],
            subscribed=[timer(parent, "e1", T0), named(parent, "e2", "message", "order")],
            history=[{"type": "parent"}],
        )
        child = new_step(backend, subscribed=[named(parent, "e3", "signal", "alarm")], history=[{"type": "child"}])
        failing = build(other, held, locked.id)
        if case == "existing id":
            failing.instance = replace(failing.instance, id=spare)
        externals = [running.id, locked.id, parent_step.externals[0].id]
        instances = [parent, other, child.instance]
        before = (event_snapshot(backend, instances, externals), snapshot(backend, [parent], [review]))
    with pytest.raises(error):
        backend.apply_steps([parent_step, child, failing])
    assert (event_snapshot(backend, instances, externals), snapshot(backend, [parent], [review])) == before
    assert fetched(backend, T0, "w9", ("fresh", "invoice")) == [running.id]


def test_subscriptions_are_indexed_rescheduled_and_removed(backend: Backend) -> None:
    first, _ = start(backend)
    second, _ = start(backend)
    subs = [timer(first, "e1", T0 + 300), named(first, "e2", "message", "order"), named(first, "e3", "signal", "alarm")]
    backend.apply_steps([step_for(first, subscribed=subs)])
    late, early = timer(second, "e1", T0 + 500), timer(second, "e2", T0 + 100)
    other_message = named(second, "e3", "message", "order")
    backend.apply_steps([step_for(second, subscribed=[late, early, other_message])])
    first, second = backend.instances([first.id, second.id])  # type: ignore[assignment]

    assert backend.due_timers(T0 + 99) == []
    assert backend.due_timers(T0 + 300) == [(early.member, T0 + 100), (subs[0].member, T0 + 300)]
    assert backend.due_timers(T0 + 1000, limit=1) == [(early.member, T0 + 100)]
    assert backend.subscriptions("message", "order") == sorted([(first.id, "e2"), (second.id, "e3")])
    assert backend.subscriptions("signal", "alarm") == [(first.id, "e3")]
    assert backend.subscriptions("signal", "order") == [] and backend.subscriptions("message", "alarm") == []
    with pytest.raises(ValueError):
        backend.subscriptions("timer", "order")

    moved = replace(subs[0], due=T0 + 50)  # a cycle's next due: subscribed again
    backend.apply_steps([step_for(first, subscribed=[moved], unsubscribed=subs[1:])])
    assert backend.due_timers(T0 + 100) == [(moved.member, T0 + 50), (early.member, T0 + 100)]
    assert backend.subscriptions("message", "order") == [(second.id, "e3")]
    assert backend.subscriptions("signal", "alarm") == []
    gone = timer(second, "e9", T0)  # subscribed and unsubscribed in one step: removed
    backend.apply_steps([step_for(second, subscribed=[gone], unsubscribed=[late, early, gone, other_message])])
    assert backend.due_timers(T0 + 1000) == [(moved.member, T0 + 50)]
    assert backend.subscriptions("message", "order") == []


def test_bad_subscriptions_are_rejected_before_any_write(backend: Backend) -> None:
    instance, _ = start(backend)
    for bad in (SubscriptionIndex(instance.id, "e1", "timer"), SubscriptionIndex(instance.id, "e1", "message")):
        with pytest.raises(ValueError):
            backend.apply_steps([step_for(instance, subscribed=[timer(instance, "e0", T0), bad])])
    with pytest.raises(ValueError):
        backend.apply_steps([step_for(instance, unsubscribed=[SubscriptionIndex(instance.id, "e1", "escalation")])])
    assert backend.instance(instance.id) == instance
    assert backend.due_timers(T0) == []


def test_timer_index_schedule_take_and_remove(backend: Backend) -> None:
    member = start_timer_member("proc:1", "StartTimer")
    backend.schedule_timer(member, T0 + 10)
    backend.schedule_timer("inst|i|e1", T0 + 20)
    assert backend.due_timers(T0 + 10) == [(member, T0 + 10)]
    assert not backend.take_timer(member, T0 + 9, None)  # no longer at the due time seen
    assert backend.take_timer(member, T0 + 10, T0 + 30)  # a cycle: moved on
    assert not backend.take_timer(member, T0 + 10, T0 + 30)
    assert backend.due_timers(T0 + 100) == [("inst|i|e1", T0 + 20), (member, T0 + 30)]
    assert backend.take_timer("inst|i|e1", T0 + 20, None)
    assert not backend.take_timer("inst|i|e1", T0 + 20, None)
    assert not backend.take_timer("unknown", T0, None)
    backend.schedule_timer(member, T0 + 5)  # rescheduling moves
    assert backend.due_timers(T0 + 100) == [(member, T0 + 5)]
    backend.remove_timer(member)
    backend.remove_timer(member)
    assert backend.due_timers(2**52) == []
    assert backend.due_timers(T0, limit=0) == []


def test_take_timer_race_has_exactly_one_winner(backend: Backend) -> None:
    threads = 16
    barrier = threading.Barrier(threads)

    def take(next_due: int | None) -> bool:
        barrier.wait()
        return backend.take_timer("start|proc:1|t", T0, next_due)

    with ThreadPoolExecutor(threads) as pool:
        for round_ in range(5):
            backend.schedule_timer("start|proc:1|t", T0)
            next_due = None if round_ % 2 else T0 + 1000
            results = list(pool.map(take, [next_due] * threads))
            assert results.count(True) == 1
            expected = [] if next_due is None else [("start|proc:1|t", next_due)]
            assert backend.due_timers(2**52) == expected


def test_fetch_and_lock_by_topic_priority_and_age(backend: Backend) -> None:
    _, [old, new, urgent, mail, closed, later] = with_externals(
        backend,
        {"create_time": T0 + 1},
        {"create_time": T0 + 2},
        {"create_time": T0 + 3, "priority": 10},
        {"topic": "mail"},
        {"status": CANCELLED},
        {"available_at": T0 + 500},
    )
    locked = backend.fetch_and_lock("w1", {"invoice": LOCK}, 2, T0)
    assert [e.id for e in locked] == [urgent.id, old.id]
    assert locked[0] == replace(urgent, worker="w1", lock_expiry=T0 + LOCK, available_at=T0 + LOCK)
    assert backend.external_task(urgent.id) == locked[0]
    assert fetched(backend, T0, "w2", ("invoice", "mail")) == [mail.id, new.id]  # priority 0 ties: oldest first
    assert fetched(backend, T0 + 499, "w3") == []  # the others locked, ``later`` not yet available
    assert fetched(backend, T0 + 500, "w3") == [later.id]
    assert fetched(backend, T0 + LOCK, "w4", ("invoice", "mail", "none")) == [urgent.id, mail.id, old.id, new.id]
    assert backend.external_task(old.id).worker == "w4"  # type: ignore[union-attr]
    assert backend.fetch_and_lock("w5", {"invoice": LOCK}, 0, 2**52) == []
    assert backend.fetch_and_lock("w5", {}, 5, 2**52) == []
    assert backend.external_task(closed.id) == closed


def test_fetch_and_lock_race_hands_out_each_task_once(backend: Backend) -> None:
    _, externals = with_externals(backend, *({"priority": n % 3} for n in range(20)))
    threads = 8
    barrier = threading.Barrier(threads)

    def drain(worker: str) -> list[tuple[str, str]]:
        barrier.wait()
        got: list[tuple[str, str]] = []
        while batch := backend.fetch_and_lock(worker, {"invoice": LOCK}, 2, T0):
            got += [(e.id, e.worker or "") for e in batch]
        return got

    with ThreadPoolExecutor(threads) as pool:
        results = [pair for chunk in pool.map(drain, [f"w{n}" for n in range(threads)]) for pair in chunk]
    assert sorted(i for i, _ in results) == sorted(e.id for e in externals)
    for ext_id, worker in results:
        assert backend.external_task(ext_id).worker == worker  # type: ignore[union-attr]


def test_complete_external_needs_the_lock_owner(backend: Backend) -> None:
    instance, [ext, unlocked] = with_externals(backend, {}, {"topic": "other"})
    assert fetched(backend, T0, "w1") == [ext.id]
    for worker, target in (("w2", ext.id), (None, ext.id), ("w1", unlocked.id)):
        with pytest.raises(Conflict) as caught:
            backend.apply_steps([step_for(instance, complete_external=target, external_worker=worker)])
        assert caught.value.code == "LOCK_LOST"
    with pytest.raises(ExternalTaskNotFound):
        backend.apply_steps([step_for(instance, complete_external="nope", external_worker="w1")])
    assert backend.instance(instance.id) == instance
    step = step_for(instance, complete_external=ext.id, external_worker="w1")
    backend.apply_steps([step])
    done = backend.external_task(ext.id)
    assert done == replace(
        ext, status=COMPLETED, end_time=step.now, worker="w1", lock_expiry=T0 + LOCK, available_at=T0 + LOCK
    )
    assert [e.id for e in backend.instance_externals(instance.id)] == [unlocked.id]
    assert fetched(backend, 2**52, "w1") == []
    with pytest.raises(TaskNotActive):
        backend.apply_steps([step_for(step.instance, complete_external=ext.id, external_worker="w1")])


def test_externals_cancelled_are_closed_and_unindexed(backend: Backend) -> None:
    instance, [ext, incident] = with_externals(backend, {}, {"incident": True})
    fresh = make_external(backend, instance)
    step = step_for(instance, externals=[fresh], externals_cancelled=[ext.id, incident.id, fresh.id, "unknown"])
    backend.apply_steps([step])
    for record in (ext, incident, fresh):
        assert backend.external_task(record.id) == replace(record, status=CANCELLED, end_time=step.now)
    assert backend.instance_externals(instance.id) == []
    assert fetched(backend, 2**52) == []
    with pytest.raises(TaskNotActive):
        backend.unlock_external(ext.id)


def test_fail_external_with_retries_backs_off(backend: Backend) -> None:
    _, [ext] = with_externals(backend, {})
    assert fetched(backend, T0) == [ext.id]
    with pytest.raises(Conflict) as caught:
        backend.fail_external(ext.id, "w2", 2, 1000, "boom", None, T0 + 10)
    assert caught.value.code == "LOCK_LOST"
    failed = backend.fail_external(ext.id, "w1", 2, 1000, "boom — é", "trace", T0 + 10)
    assert failed == replace(ext, retries=2, available_at=T0 + 1010, error_message="boom — é", error_details="trace")
    assert backend.external_task(ext.id) == failed
    assert fetched(backend, T0 + 1009, "w2") == []
    assert fetched(backend, T0 + 1010, "w2") == [ext.id]
    again = backend.fail_external(ext.id, "w2", 1, 0, None, None, T0 + 2000)
    assert (again.retries, again.error_message, again.error_details, again.available_at) == (1, None, None, T0 + 2000)
    with pytest.raises(Conflict):
        backend.fail_external(ext.id, "w2", 1, 0, None, None, T0 + 2000)  # no longer holds the lock


def test_fail_external_without_retries_is_an_incident_until_retries_are_set(backend: Backend) -> None:
    instance, [ext] = with_externals(backend, {})
    assert fetched(backend, T0) == [ext.id]
    failed = backend.fail_external(ext.id, "w1", 0, 1000, "boom", "trace", T0 + 10)
    assert (failed.incident, failed.retries, failed.error_message) == (True, 0, "boom")
    assert backend.external_task(ext.id) == failed
    assert fetched(backend, 2**52, "w2") == []
    assert backend.instance_externals(instance.id) == [failed]
    assert backend.unlock_external(ext.id).incident  # still an incident, still not fetchable
    assert fetched(backend, 2**52, "w2") == []
    resolved = backend.set_external_retries(ext.id, 3, T0 + 5000)
    assert resolved == replace(failed, incident=False, retries=3, worker=None, lock_expiry=None, available_at=T0 + 5000)
    assert fetched(backend, T0 + 4999, "w2") == []
    assert fetched(backend, T0 + 5000, "w2") == [ext.id]
    again = backend.set_external_retries(ext.id, 0, T0 + 6000)
    assert (again.incident, again.retries) == (True, 0)
    assert fetched(backend, 2**52, "w3") == []


def test_extend_and_unlock_external(backend: Backend) -> None:
    _, [ext] = with_externals(backend, {})
    assert fetched(backend, T0) == [ext.id]
    with pytest.raises(Conflict) as caught:
        backend.extend_external_lock(ext.id, "w2", 5000, T0 + 100)
    assert caught.value.code == "LOCK_LOST"
    extended = backend.extend_external_lock(ext.id, "w1", 2 * LOCK, T0 + 100)
    expiry = T0 + 100 + 2 * LOCK
    assert (extended.worker, extended.lock_expiry, extended.available_at) == ("w1", expiry, expiry)
    assert backend.external_task(ext.id) == extended
    assert fetched(backend, T0 + LOCK, "w2") == []
    assert fetched(backend, T0 + 100 + 2 * LOCK, "w2") == [ext.id]
    released = backend.unlock_external(ext.id)
    assert (released.worker, released.lock_expiry, released.available_at) == (None, None, 0)
    assert backend.external_task(ext.id) == released
    with pytest.raises(Conflict):
        backend.extend_external_lock(ext.id, "w2", LOCK, T0)  # nobody holds it now
    assert fetched(backend, T0, "w3") == [ext.id]


def test_external_task_updates_of_unknown_or_closed_tasks(backend: Backend) -> None:
    _, [closed] = with_externals(backend, {"status": COMPLETED, "worker": "w1"})
    calls: list[Callable[[str], Any]] = [
        lambda i: backend.fail_external(i, "w1", 1, 0, None, None, T0),
        lambda i: backend.set_external_retries(i, 1, T0),
        lambda i: backend.extend_external_lock(i, "w1", LOCK, T0),
        backend.unlock_external,
    ]
    for call in calls:
        with pytest.raises(ExternalTaskNotFound):
            call("nope")
        with pytest.raises(TaskNotActive):
            call(closed.id)
    assert backend.external_task(closed.id) == closed


def test_apply_steps_keeps_odd_strings(backend: Backend) -> None:
    odd = 'q"uo\\te/sl\u00e9\u202e\U0001f600\u0000\n\ud800{}[]'
    step = new_step(backend, history=[{"note": odd}])
    step.instance = replace(step.instance, business_key=odd, state={"vars": {odd: odd, "big": 2**62}})
    step.created = [make_task(backend, step.instance, name=odd, candidate_users=[odd], variables={odd: [odd]})]
    step.externals = [make_external(backend, step.instance, topic=odd, error_message=odd, variables={"v": odd})]
    step.subscribed = [named(step.instance, odd, "message", odd), timer(step.instance, odd, T0)]
    backend.apply_steps([step])
    assert backend.instance(step.instance.id) == step.instance
    assert backend.task(step.created[0].id) == step.created[0]
    assert backend.external_task(step.externals[0].id) == step.externals[0]
    assert backend.history(step.instance.id) == [{"note": odd}]
    assert backend.subscriptions("message", odd) == [(step.instance.id, odd)]
    assert backend.due_timers(T0) == [(f"inst|{step.instance.id}|{odd}", T0)]
    assert fetched(backend, T0, odd, (odd,)) == [step.externals[0].id]
    assert query(backend, users=(odd,)) == [step.created[0].id]


def test_clear_forgets_events_and_external_tasks(backend: Backend) -> None:
    instance, [ext] = with_externals(backend, {})
    subs = [timer(instance, "e1", T0), named(instance, "e2", "signal", "s")]
    backend.apply_steps([step_for(instance, subscribed=subs)])
    assert fetched(backend, T0, "w") == [ext.id]
    backend.fail_external(ext.id, "w", 0, 0, None, None, T0)  # an incident
    backend.clear()
    assert backend.external_task(ext.id) is None
    assert backend.instance_externals(instance.id) == []
    assert backend.due_timers(2**52) == []
    assert backend.subscriptions("signal", "s") == []
    assert fetched(backend, 2**52) == []


@pytest.mark.redis
def test_redis_event_keys_have_the_documented_types(redis_backend: Any) -> None:
    instance, [ext, failing] = with_externals(redis_backend, {}, {"topic": "mail"})
    subs = [timer(instance, "e1", T0), named(instance, "e2", "message", "m"), named(instance, "e3", "signal", "s")]
    redis_backend.apply_steps([step_for(instance, subscribed=subs)])
    assert fetched(redis_backend, T0, "w", ("mail",)) == [failing.id]
    redis_backend.fail_external(failing.id, "w", 0, 0, "boom", None, T0)
    client = redis_backend.client
    partition = redis_backend.partition(instance.id)

    def key(*parts: str) -> str:
        return redis_backend.pkey(partition, *parts)

    expected = {
        key("ext", ext.id): "hash",
        key("inst-ext", instance.id): "zset",
        key("ext-topic", "invoice"): "zset",
        key("timers"): "zset",
        key("msg", "m"): "set",
        key("sig", "s"): "set",
    }
    assert {k: client.type(k) for k in expected} == expected
    assert client.zscore(key("ext-topic", "invoice"), ext.id) == 0
    assert client.exists(key("ext-topic", "mail")) == 0  # the incident left its topic
    assert set(client.zrange(key("inst-ext", instance.id), 0, -1)) == {ext.id, failing.id}
    assert client.hget(key("ext", failing.id), "incident") == "1"
    root = redis_backend.pkey(partition)
    assert all(k.startswith(root) for k in client.scan_iter(match=f"{redis_backend.prefix}:*"))


@pytest.mark.redis
def test_redis_store_of_another_key_layout_stops_start_up(redis_backend: Any) -> None:
    """A store an earlier version filled (ids handed out, no layout recorded) or another
    layout is refused with a message, not misread; a fresh store records the layout."""
    import redis as redis_py

    from backends.redis import RedisBackend
    from backends.redis_scripts import StoreLayoutMismatch
    from backends.redis_store import LAYOUT

    prefix = redis_backend.prefix + "-layout"
    fresh = RedisBackend(REDIS_URL, prefix=prefix)
    try:
        fresh.new_id()
        client = redis_py.Redis.from_url(REDIS_URL, decode_responses=True)
        assert client.hget(fresh.key("meta"), "layout") == LAYOUT
        RedisBackend(REDIS_URL, prefix=prefix).close()  # the same layout: fine
        client.hset(fresh.key("meta"), "layout", "2")
        with pytest.raises(StoreLayoutMismatch, match=r"key layout 2.*reads layout 3.*new key prefix"):
            RedisBackend(REDIS_URL, prefix=prefix)
        client.hdel(fresh.key("meta"), "layout")  # an earlier version: ids handed out, no layout
        with pytest.raises(StoreLayoutMismatch, match=r"key layout 1"):
            RedisBackend(REDIS_URL, prefix=prefix)
    finally:
        fresh.clear()
        fresh.close()
