"""Smaller vendor idioms (issue 11, part 9), on every backend: Flowable's ``$INITIATOR``,
``${...}`` in task descriptions, and the first terminate end event winning."""

from __future__ import annotations

import pytest

from backends.base import Backend
from bpm.runtime import Runtime
from tests.conftest import DATA

VENDOR = DATA / "vendor"


@pytest.fixture
def runtime(backend: Backend) -> Runtime:
    rt = Runtime(backend, VENDOR)
    assert not rt.deploy_directory().errors
    return rt


def test_the_initiator_literal_is_the_starter_and_descriptions_are_resolved(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="flowable_initiator", user="erin", variables={"claimId": "C-7",
                                                                                       "amount": 42})  # fmt: skip
    assert runtime.instance(instance_id).state["vars"]["initiator"] == "erin"  # as Flowable records it
    [fill] = runtime.instance_tasks(instance_id)
    assert fill.assignee == "erin"
    assert fill.description == "Claim C-7 of 42 EUR, started by erin"
    runtime.complete(fill.id, "erin")
    [check] = runtime.instance_tasks(instance_id)
    assert (check.assignee, sorted(check.candidate_users)) == (None, ["auditor", "erin"])
    assert check.description == "Check ${missing} later"  # does not evaluate: kept as written


def test_an_unknown_starter_leaves_the_task_unassigned(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="flowable_initiator", variables={"claimId": "C-8", "amount": 1})
    [fill] = runtime.instance_tasks(instance_id)
    assert fill.assignee is None


def test_only_the_first_terminate_end_reached_is_entered(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="first_terminate_wins")
    assert runtime.instance(instance_id).ended
    entered = [e["elementId"] for e in runtime.history(instance_id) if e["type"] == "element.entered"]
    assert "supervisorWins" in entered and "managerWins" not in entered
