"""The memory backend keeps instances as plain tuples (backends.memory_stored): read back, they are
the records written, and the garbage collector stops walking them."""

from __future__ import annotations

import gc
from dataclasses import fields

from backends.memory import MemoryBackend
from backends.memory_stored import FIELDS, TRUNCATED, freeze_instance, matching, thaw_instance, truncated
from bpm.records import Instance, InstanceQuery, Step


def _instance(**changes: object) -> Instance:
    values = {
        "id": "1-a",
        "definition_id": "p:3",
        "process_key": "p",
        "process_name": "P",
        "state": {"format": 2, "seq": 1, "ended": False, "vars": {"x": [1, {"y": 2}]}, "tokens": {}},
        "create_time": 11,
        "create_by": "ann",
        "app_name": "app",
        "ended": False,
        "end_time": 12,
        "rev": 3,
        "business_key": "bk",
        "parent_id": "1-0",
        "history_truncated": False,
    }
    values.update(changes)
    return Instance(**values)  # type: ignore[arg-type]


def test_a_stored_instance_thaws_to_the_record_frozen_with_a_fresh_state() -> None:
    assert tuple(f.name for f in fields(Instance)) == FIELDS
    instance = _instance()
    stored = freeze_instance(instance, False)
    assert type(stored) is tuple and type(stored[FIELDS.index("state")]) is bytes
    first, second = thaw_instance(stored), thaw_instance(stored)
    assert first == instance and first is not instance
    first.state["vars"]["x"][1]["y"] = 3
    assert second.state == instance.state
    assert freeze_instance(instance, True)[TRUNCATED] is True
    assert thaw_instance(truncated(stored)) == _instance(history_truncated=True)


def test_matching_on_stored_tuples_is_what_instance_queries_match_and_how_they_sort() -> None:
    assert [f.name for f in fields(InstanceQuery)] == ["process_key", "business_key", "state", "start", "size"]
    records = [
        _instance(id=f"1-{n}", process_key=key, business_key=bk, ended=ended, create_time=time)
        for n, (key, bk, ended, time) in enumerate(
            [("p", "a", False, 5), ("p", "b", True, 5), ("q", "a", True, 7), ("p", "", False, 9), ("q", "b", False, 1)]
        )
    ]
    stored = [freeze_instance(r, False) for r in records]
    for key in (None, "p", "q", "x"):
        for bk in (None, "a", "b", ""):
            for state in (None, "active", "ended"):
                query = InstanceQuery(process_key=key, business_key=bk, state=state)
                expected = sorted(filter(query.matches, records), key=query.sort_key)
                assert [thaw_instance(s) for s in matching(query, stored)] == expected


def test_the_backend_keeps_untracked_tuples_and_hands_out_records() -> None:
    backend = MemoryBackend()
    instance = _instance(id=backend.new_id(), rev=1, parent_id=None)
    backend.apply_steps([Step(instance=instance, new=True)])
    stored = backend._instances[instance.id]
    gc.collect()
    assert type(stored) is tuple and not gc.is_tracked(stored)
    read = backend.instance(instance.id)
    assert read == instance and read is not instance
    instance.state["vars"]["x"].append(9)  # the step's record is not the stored one
    assert backend.instance(instance.id) == read
    found, total = backend.list_instances(InstanceQuery(process_key="p", business_key="bk"))
    assert total == 1 and found == [read]
    assert backend.list_instances(InstanceQuery(state="ended")) == ([], 0)


def test_the_guard_is_one_reentrant_lock_that_its_own_exit_releases() -> None:
    import threading

    backend = MemoryBackend()
    got: list[bool] = []

    def other() -> None:
        got.append(backend._guard.acquire(timeout=5))
        backend._guard.release()

    try:
        with backend._guard, backend._guard:  # reentrant (identities() calls identity() inside)
            assert backend.identities(["ann"])[0].user == "ann"
            raise KeyError("inside")
    except KeyError:
        pass
    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert got == [True]  # released by leaving, an exception or not
