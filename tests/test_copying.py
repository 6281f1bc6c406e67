"""bpm.copying: deep copies that equal copy.deepcopy's, and records copied field by field."""

from __future__ import annotations

import copy
import datetime as dt
from collections import OrderedDict
from typing import Any

import pytest

from backends.base import Identity, Instance, Step, Task
from backends.memory import MemoryBackend
from bpm.copying import clone, copy_plain, freeze, shallow_copy, thaw


def _state() -> dict[str, Any]:
    return {
        "format": 2,
        "seq": 7,
        "ended": False,
        "vars": {"n": 1, "x": 1.5, "big": 10**30, "ok": True, "none": None, "list": [1, [2, {"a": "b"}]]},
        "tokens": {"t3": {"el": "Task_1", "scope": "root", "flow": "Flow_2", "task": "4-a"}},
        "pair": (1, [2]),
        "names": {"a", "b"},
        "frozen": frozenset({"x"}),
    }


def test_copy_plain_equals_deepcopy_and_shares_nothing_mutable() -> None:
    state = _state()
    copied = copy_plain(state)
    assert copied == copy.deepcopy(state)
    assert type(copied["pair"]) is tuple and type(copied["vars"]["ok"]) is bool
    copied["vars"]["list"][1][1]["a"] = "changed"
    copied["tokens"]["t3"]["el"] = "other"
    copied["pair"][1].append(3)
    copied["names"].add("c")
    assert state == _state()


def test_copy_plain_falls_back_to_deepcopy_for_what_is_not_plain() -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    ordered = OrderedDict(a=[1])
    data = {"when": when, "ordered": ordered}
    copied = copy_plain(data)
    assert copied == data
    assert type(copied["ordered"]) is OrderedDict
    copied["ordered"]["a"].append(2)
    assert ordered == OrderedDict(a=[1])
    assert copy_plain("text") == "text" and copy_plain(None) is None


def test_clone_copies_records_field_by_field() -> None:
    task = Task(
        id="1-a",
        name="Review",
        instance_id="1-0",
        definition_id="p:1",
        process_name="P",
        create_time=5,
        task_definition_key="review",
        candidate_users=["ann"],
        variables={"v": [1]},
    )
    copied = clone(task)
    assert copied == task and copied is not task
    copied.candidate_users.append("bob")
    copied.variables["v"].append(2)
    assert task.candidate_users == ["ann"] and task.variables == {"v": [1]}
    instance = Instance(id="1-0", definition_id="p:1", process_key="p", process_name="P", state=_state(), create_time=1)
    again = clone(instance)
    again.state["vars"]["n"] = 2
    assert instance.state == _state()
    identity = Identity("ann", frozenset({"g"}))  # frozen records are copied too
    assert clone(identity) == identity
    assert clone([task, {"t": task}]) == [task, {"t": task}]


def test_memory_backend_hands_out_copies_and_keeps_a_steps_records_as_built() -> None:
    backend = MemoryBackend()
    instance = Instance(
        id=backend.new_id(), definition_id="p:1", process_key="p", process_name="P", state=_state(), create_time=1
    )
    backend.apply_steps([Step(instance=instance, new=True)])
    read = backend.instance(instance.id)
    assert read == instance and read is not instance
    assert read is not None
    read.state["vars"]["n"] = 99
    instance.state["vars"]["n"] = 98  # the step's record is not the stored one
    again = backend.instance(instance.id)
    assert again is not None and again.state["vars"]["n"] == 1
    assert again.state == _state() and type(again.state["pair"]) is tuple


def test_freeze_and_thaw_give_fresh_copies_and_shallow_copy_shares_fields() -> None:
    frozen = freeze(_state())
    assert isinstance(frozen, bytes)
    first, second = thaw(frozen), thaw(frozen)
    assert first == second == _state() and first is not second
    odd = {"when": dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "list": [1]}
    kept = freeze(odd)
    assert thaw(kept) == odd and thaw(kept)["list"] is not odd["list"]
    instance = Instance(id="1-0", definition_id="p:1", process_key="p", process_name="P", state=_state(), create_time=1)
    copied = shallow_copy(instance)
    assert copied == instance and copied is not instance and copied.state is instance.state


def test_maker_makes_what_the_class_makes() -> None:
    from bpm.copying import maker
    from bpm.engine.results import NewTask, StepResult
    from bpm.planner import _TASK_FIELDS, Outbox, Plan, Preconditions, _make_task

    make = maker(Task)
    given: dict[str, Any] = dict(
        id="1-a", name="R", instance_id="1-0", definition_id="p:1", process_name="P", create_time=5
    )
    assert make(**given, task_definition_key="r") == Task(**given, task_definition_key="r")
    first, second = make(*given.values(), "r"), make(*given.values(), "r")
    assert first.candidate_users == [] and first.candidate_users is not second.candidate_users  # factories run
    values: list[Any] = [
        "1-a",
        "R",
        "d",
        "1-0",
        "p:1",
        "P",
        5,
        "ann",
        7,
        60,
        "bob",
        "r",
        ["u"],
        ["g"],
        ["x"],
        "f",
        {"v": 1},
    ]
    assert _make_task(*values) == Task(**dict(zip(_TASK_FIELDS, values, strict=True)))
    assert maker(Preconditions, "history")([{"a": 1}]) == Preconditions(history=[{"a": 1}])
    assert maker(Preconditions)() == Preconditions() and maker(Plan)() == Plan() and maker(Outbox)() == Outbox()
    new_task = ("t", "e", "n", "d", None, ("u",), (), (), None, 50)
    assert maker(NewTask)(*new_task) == NewTask(*new_task)
    assert maker(Task) is make  # one per type and fields
    for refused in (StepResult, Identity):  # a hand-written __init__; a frozen record
        with pytest.raises(TypeError):
            maker(refused)
    with pytest.raises(TypeError):
        maker(Task, "name")  # id has no default
