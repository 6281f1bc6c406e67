"""The compact forms of the Redis backend read back unchanged: an instance and its engine state
in one string value, task hashes without their id and defaults, history entries relative to
their instance; and on a real Redis an open instance is three keys, all compact."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend, Instance, Step, Task
from backends.redis import RedisBackend
from backends.redis_codec import (
    decode_fields,
    decode_instance,
    encode,
    history_entry,
    history_json,
    instance_body,
    split_instance,
)
from backends.redis_scripts import LUA_DIR, helpers_for, script_source
from bpm.runtime import Runtime

STATE = {
    "format": 2,
    "seq": 2,
    "ended": False,
    "vars": {"amount": 5},
    "tokens": {"t2": {"el": "review", "scope": "root", "flow": "f1", "task": "1-3"}},
    "scopes": {"root": {"el": None, "parent": None, "token": None}},
    "subs": {},
    "mi": {},
}
BUSY = {
    **STATE,
    "ended": True,
    "tokens": {"t1": {"el": "x", "scope": "s2"}, "t2": {"scope": "root", "el": "y", "flow": "f", "task": "t"}},
    "scopes": {
        "root": {"el": None, "parent": None, "token": None},
        "s2": {"el": "sub", "parent": "root", "token": "t1"},
    },
    "subs": {"e1": {"kind": "timer"}},
}


@pytest.mark.parametrize(
    "instance",
    [
        Instance("1-2", "approval:1", "approval", "Approval", STATE, 1_700_000_000_000, create_by="clerk"),
        Instance("1-2", "approval:3", "other", "A|B", BUSY, 5, "u", "app", True, 9, 4, "bk|1", "0-1", True),
        Instance("1-2", "p:1", "p", "P", {}, 0),
        Instance("1-2", "p:1", "p", "P", {"anything": [1]}, 0),
        Instance("1-2", "p:1", "p", "P", {**STATE, "extra": 1}, 0),
    ],
)
def test_an_instance_value_reads_back_as_written(instance: Instance) -> None:
    flags = ("e" if instance.ended else "") + ("t" if instance.history_truncated else "")
    stored = f"{instance.rev}|{flags}|1-3 1-4|t1-5 x1-6|{instance_body(instance)}"  # as apply_steps.lua writes it
    assert decode_instance("1-2", stored) == instance
    assert decode_instance("1-2", None) is None
    assert split_instance(stored)[2:4] == ("1-3 1-4", "t1-5 x1-6")


def test_an_instance_body_leaves_out_names_defaults_and_the_derivable_process_key() -> None:
    instance = Instance("1-2", "approval:1", "approval", "Approval", STATE, 1_700_000_000_000, create_by="clerk")
    assert instance_body(instance) == (
        '["approval:1","Approval",1700000000000,"clerk",[2,{"amount":5},{"t2":["review","root","f1","1-3"]}]]'
    )


def test_a_task_hash_has_no_id_and_no_default_fields_and_reads_back_with_its_id() -> None:
    task = Task("1-3", "Review", "1-2", "approval:1", "Approval", 7, "review", candidate_groups=["g"])
    fields = encode(task)
    assert fields == {
        "n": "Review",
        "ii": "1-2",
        "di": "approval:1",
        "pn": "Approval",
        "ct": "7",
        "tk": "review",
        "cg": '["g"]',
    }
    assert RedisBackend.decode_task(fields, "1-3") == task
    closed = Task("1-3", "R", "1-2", "p:1", "P", 7, "r", priority=10, status="completed", loadlink_param="x")
    assert Task.from_dict({**decode_fields(encode(closed)), "id": "1-3"}) == closed


@pytest.mark.parametrize(
    "entry",
    [
        {"time": 105, "type": "instance.started", "user": "ann", "actor": "ann", "definitionId": "p:1"},
        {"time": 105, "type": "instance.started", "user": "ann", "actor": "bob", "definitionId": "p:2"},
        {"actor": "ann", "time": 106, "user": "ann", "type": "task.claimed", "taskId": "1-3"},
        {"time": 107, "type": "element.entered", "elementId": "a", "elementType": "userTask", "elementName": ""},
        {"time": 107, "type": "element.left", "elementId": "a", "elementType": "oddTask", "elementName": "A"},
    ],
)
def test_a_history_entry_relative_to_its_instance_reads_back_as_written(entry: dict[str, Any]) -> None:
    stored = history_json(entry, 100, "p:1")
    assert history_entry(stored, 100, "p:1") == entry
    assert list(history_entry(stored, 100, "p:1")) == list(entry) or stored.startswith("[")


def test_history_entries_are_stored_short() -> None:
    started = {"time": 105, "type": "instance.started", "user": "ann", "actor": "ann", "definitionId": "p:1"}
    assert history_json(started, 100, "p:1") == '{"~r":5,"~y":"~s","~U":"ann","~d":0}'
    entered = {"time": 107, "type": "element.entered", "elementId": "a", "elementType": "userTask", "elementName": ""}
    assert history_json(entered, 100, "p:1") == '[7,1,"a",2]'


def test_each_script_defines_only_the_helpers_it_uses() -> None:
    defined = re.compile(r"^local function (\w+)", re.MULTILINE)
    read = set(defined.findall(script_source("task_and_instance")))
    assert read == {"key"}
    claim = set(defined.findall(script_source("claim")))
    assert {"load_task", "set_assignee", "append_history", "body"} <= claim
    assert not claim & {"expire_instance", "prune_instance_lists", "load_external"}
    assert helpers_for("").count("local function") == 0  # the head (ARGV[1] parsed) only
    assert len(helpers_for((LUA_DIR / "apply_steps.lua").read_text())) < len((LUA_DIR / "_common.lua").read_text())


def test_an_open_instance_is_three_compact_keys(redis_backend: Backend) -> None:
    backend = redis_backend
    assert isinstance(backend, RedisBackend)
    instance = Instance(backend.new_id(), "approval:1", "approval", "Approval", STATE, 1_700_000_000_000, "clerk")
    task = Task(backend.new_id(near=instance.id), "Review", instance.id, "approval:1", "Approval", 7, "review")
    history = [{"time": 1_700_000_000_000, "type": "element.entered", "elementId": "a", "elementType": "userTask"}]
    backend.apply_steps([Step(instance=instance, created=[task], new=True, history=history)])
    client: Any = backend.client
    root = backend.pkey(backend.partition(instance.id))
    mine = sorted(k.removeprefix(root) for k in client.scan_iter(match=root.replace("{", "\\{") + "*"))
    assert [k for k in mine if k.split(":")[0] in ("inst", "task", "history", "state", "inst-closed")] == [
        f"history:{instance.id}",
        f"inst:{instance.id}",
        f"task:{task.id}",
    ]
    stored = client.get(backend.ikey(instance.id, "inst"))
    assert stored.startswith(f"1||{task.id}||[")
    assert client.object("encoding", backend.ikey(task.id, "task")) == "listpack"
    assert "id" not in client.hgetall(backend.ikey(task.id, "task"))
    assert backend.instance(instance.id) == instance and backend.task(task.id) == task
    assert backend.instance_tasks(instance.id) == [task]
    backend.apply_steps([Step(instance=Instance(**{**instance.to_dict(), "rev": 2}), complete_task=task.id, now=9)])
    value = client.get(backend.ikey(instance.id, "inst"))
    assert value.startswith(f"2|||t{task.id}|")  # no active task, one closed record


def test_an_approval_lifecycle_reads_back_through_the_compact_forms(redis_backend: Backend) -> None:
    runtime = Runtime(redis_backend)
    runtime.set_identity("clerk", ["clerks"], [])
    runtime.deploy((Path(__file__).resolve().parent.parent / "bench" / "lifecycle.bpmn").read_bytes(), file="l.bpmn")
    instance_id = runtime.start(process_name="bench lifecycle", variables={"amount": 1}, user="clerk")
    (task,) = runtime.instance_tasks(instance_id)
    assert task.candidate_groups == ["clerks"] and task.priority == 50 and task.status == "active"
    runtime.claim(task.id, "clerk")
    runtime.complete(task.id, "clerk", {"approved": True})
    history = redis_backend.history(instance_id)
    assert history[0]["type"] == "instance.started" and history[0]["definitionId"] == "benchLifecycle:1"
    assert history[0]["user"] == history[0]["actor"] == "clerk"
    assert [e["elementType"] for e in history if e["type"] == "element.entered"][:2] == ["startEvent", "userTask"]
    done = redis_backend.task(task.id)
    assert done is not None and done.status == "completed" and done.completed_by == "clerk"
    instance = redis_backend.instance(instance_id)
    assert instance is not None and instance.ended and instance.state["vars"]["approved"] is True
