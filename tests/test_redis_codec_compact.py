"""The compact forms history entries and engine states are stored in on Redis read back unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.redis_codec import history_entry, history_json, state_json, state_value


@pytest.mark.parametrize(
    "entry",
    [
        {"time": 5, "type": "element.entered", "elementId": "a", "elementType": "userTask", "elementName": "A"},
        {"time": 6, "type": "element.left", "elementId": "a", "elementType": "userTask", "elementName": None},
        {"time": 7, "type": "event.triggered", "elementId": "b", "elementType": "boundaryEvent", "elementName": ""},
        {"time": 8, "type": "error.uncaught", "elementId": "c", "elementType": "endEvent", "elementName": "", "x": 1},
        {"time": 9, "type": "task.claimed", "user": "ann", "actor": "ann", "taskId": "1-2"},
    ],
)
def test_a_history_entry_reads_back_as_written(entry: dict[str, Any]) -> None:
    stored = history_json(entry, 3)
    assert history_entry(stored, 3) == entry
    # element entries (exactly the five keys) are arrays: no key names, time after the create time
    element = set(entry) == {"time", "type", "elementId", "elementType", "elementName"}
    assert stored.startswith("[") == element
    if element:
        assert json.loads(stored)[0] == entry["time"] - 3
    # without the create time (an audit entry of a script): always an object
    assert history_entry(history_json(entry), 0) == entry and history_json(entry).startswith("{")


def test_older_history_entries_still_read() -> None:
    stored = '{"~t":1,"~y":"~i","~e":"a","~E":"userTask","~n":""}'
    assert history_entry(stored, 100) == {
        "time": 1,
        "type": "element.entered",
        "elementId": "a",
        "elementType": "userTask",
        "elementName": "",
    }


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"anything": {}},
        {
            "format": 2,
            "seq": 1,
            "ended": False,
            "vars": {},
            "tokens": {},
            "scopes": {"root": {"el": None, "parent": None, "token": None}},
            "subs": {},
            "mi": {},
        },
        {
            "format": 2,
            "seq": 3,
            "ended": True,
            "vars": {"a": 1},
            "tokens": {"t1": {"el": "x"}},
            "scopes": {
                "root": {"el": None, "parent": None, "token": None},
                "s2": {"el": "sub", "parent": "root", "token": "t1"},
            },
            "subs": {"e1": {"kind": "timer"}},
            "mi": {"m1": {"total": 2}},
            "extra": [1],
        },
    ],
)
def test_a_state_reads_back_as_written(state: dict[str, Any]) -> None:
    stored = state_json(state)
    assert state_value(stored) == state
    assert list(state_value(stored)) == list(state)  # in the same order


def test_a_state_is_stored_without_its_default_members() -> None:
    state = {
        "format": 2,
        "seq": 1,
        "ended": False,
        "vars": {},
        "tokens": {},
        "scopes": {"root": {"el": None, "parent": None, "token": None}},
        "subs": {},
        "mi": {},
    }
    assert json.loads(state_json(state)) == {"format": 2, "seq": 1, "vars": {}, "tokens": {}}
    restored = state_value(state_json(state))
    restored["subs"]["x"] = 1  # a fresh default each time, never shared
    assert state_value(state_json(state))["subs"] == {}
    assert state_value(None) == {} and state_value("") == {}
