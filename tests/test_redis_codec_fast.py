"""history_json's shortcuts (backends/redis_codec.py) write what its general path writes: an
element entry seen before (its array's tail remembered) and the object form's members."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from backends import redis_codec
from backends.redis_codec import ELEMENT_TYPE_CODES, history_json


class Text(str):
    """A str subclass: equal to a str, never on the remembered path's own writes."""


def cold(entry: Any, created: int | None = 1000, definition_id: str | None = None) -> str:
    redis_codec._ELEMENT_TAILS.clear()
    return history_json(entry, created, definition_id)


def element(**changes: Any) -> dict[str, Any]:
    entry = {"time": 1234, "type": "element.entered", "elementId": "a", "elementType": "userTask", "elementName": "A"}
    entry.update(changes)
    return entry


@pytest.mark.parametrize("element_type", [*ELEMENT_TYPE_CODES, "unknownType"])
@pytest.mark.parametrize("kind", ["element.entered", "element.left", "event.triggered"])
@pytest.mark.parametrize("name", ["", 'Réview "q" \u2028', None])
def test_a_remembered_element_entry_is_written_as_the_first_time(element_type: str, kind: str, name: Any) -> None:
    entry = element(type=kind, elementType=element_type, elementName=name)
    first = cold(entry)
    assert history_json(entry, 1000) == first
    assert history_json(element(type=kind, elementType=element_type, elementName=name, time=999), 1000) == cold(
        element(type=kind, elementType=element_type, elementName=name, time=999)
    )


@pytest.mark.parametrize(
    "other",
    [
        element(time=True),
        element(time=1234.0),
        element(time="1234"),
        element(elementId=Text("a")),
        element(elementName=Text("A")),
        element(elementType=Text("userTask")),
        element(type=Text("element.entered")),
        element(extra=1),
        {"time": 1234, "type": "element.entered", "elementId": "a", "elementType": "userTask", "name": "A"},
        OrderedDict(element()),
        element(elementId=["a"]),
    ],
)
def test_an_entry_equal_to_a_remembered_one_in_part_is_written_as_the_general_path_writes_it(other: Any) -> None:
    expected = cold(other)
    history_json(element(), 1000)  # remembered
    assert history_json(other, 1000) == expected
    assert history_json(other) == cold(other, None)  # no create time: an object


def test_the_remembered_tails_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_codec, "_ELEMENT_TAILS_SIZE", 3)
    redis_codec._ELEMENT_TAILS.clear()
    for i in range(10):
        assert history_json(element(elementId=f"e{i}"), 1000) == f'[234,1,"e{i}",2,"A"]'
        assert len(redis_codec._ELEMENT_TAILS) <= 3


@pytest.mark.parametrize(
    ("entry", "created", "definition_id", "stored"),
    [
        (
            {"time": 5, "type": "task.completed", "taskId": "1-2", "elementId": "r", "user": "u", "actor": "u"},
            3,
            None,
            '{"~r":2,"~y":"~c","taskId":"1-2","~e":"r","~U":"u"}',
        ),
        (
            {"time": 5, "type": "task.claimed", "user": "u", "actor": "v"},
            3,
            None,
            '{"~r":2,"~y":"~l","~u":"u","~a":"v"}',
        ),
        ({"actor": "u", "user": "u", "time": 5}, None, None, '{"~a":"u","~u":"u","~t":5}'),
        ({"user": "u", "x": 1, "actor": "u"}, 3, None, '{"~u":"u","x":1,"~a":"u"}'),
        ({"user": "u"}, 3, None, '{"~u":"u"}'),
        ({"time": 5.5, "type": "custom", "definitionId": "p:1"}, 3, "p:1", '{"~t":5.5,"~y":"custom","~d":0}'),
        ({"type": 7, "definitionId": "p:2", "actor": None}, 3, "p:1", '{"~y":7,"~d":"p:2","~a":null}'),
        (
            {"time": 1, "type": "instance.started", "user": None, "actor": None, "definitionId": "p:1"},
            1,
            "p:1",
            '{"~r":0,"~y":"~s","~U":null,"~d":0}',
        ),
    ],
)
def test_object_entries(entry: dict[str, Any], created: int | None, definition_id: str | None, stored: str) -> None:
    assert history_json(entry, created, definition_id) == stored
    assert redis_codec.history_entry(stored, created or 0, definition_id) == entry
