"""The Redis codec's shortcuts (backends/redis_codec.py) against its general paths: history_json
of an element entry seen before (its array's tail remembered) and of the object form's
members; hash fields read through a table (decode_flat, decode_fields); build."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import pytest

from backends import redis_codec
from backends.base import Instance, Task
from backends.redis_codec import ELEMENT_TYPE_CODES, encode, history_json


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


def general_decode(data: dict[str, str]) -> dict[str, Any]:
    """decode_fields as it read each field before its table (backends/redis_codec.py)."""
    out: dict[str, Any] = {}
    for stored, raw in data.items():
        name = redis_codec._LONG_NAMES.get(stored, stored)
        if name in redis_codec._JSON_FIELDS:
            out[name] = json.loads(raw)
        elif name in redis_codec._INT_FIELDS:
            out[name] = int(raw)
        elif name in redis_codec._BOOL_FIELDS:
            out[name] = raw == "1"
        else:
            out[name] = raw
    return out


def test_hash_fields_read_as_before() -> None:
    """(A flat reply of a hash names each field once; a short and a long name may both be there.)"""
    task = Task(
        id="1-2",
        name="Review",
        instance_id="1-1",
        definition_id="p:1",
        process_name="P",
        task_definition_key="review",
        candidate_users=["ann"],
        candidate_groups=["clerks"],
        priority=7,
        variables={"x": [1]},
        create_time=5,
        due_date=9,
        form_key="f",
    )
    flat = [v for pair in encode(task).items() for v in pair]
    flat += ["id", "1-2", "ended", "1", "incident", "0", "rev", "3", "unknown", "u", "name", "Long"]
    flat += ["v", "{}", "state", '{"a":1}', "k", "kind", "retries", "2"]
    data = redis_codec.pairs(flat)
    assert redis_codec.decode_flat(flat) == redis_codec.decode_fields(data) == general_decode(data)
    assert list(redis_codec.decode_flat(flat)) == list(general_decode(data))  # the same order
    for stored in {*redis_codec._READS, *data}:
        assert redis_codec.decode_fields({stored: "1"}) == general_decode({stored: "1"})
    with pytest.raises(ValueError) as odd:
        redis_codec.decode_flat(["a", "b", "c"])
    with pytest.raises(ValueError) as odd_pairs:
        redis_codec.pairs(["a", "b", "c"])
    assert str(odd.value) == str(odd_pairs.value)


def test_a_record_built_with_unknown_names_leaves_them_out() -> None:
    fields: dict[str, Any] = {"id": "1-2", "name": "n", "instance_id": "1-1", "definition_id": "p:1"}
    fields |= {"process_name": "P", "task_definition_key": "t", "create_time": 1}
    assert redis_codec.build(Task, {**fields, "not_a_field": 1}) == redis_codec.build(Task, fields) == Task(**fields)


@pytest.mark.parametrize(
    "text",
    [
        '[1,{"a":[true,null]},"x"]',
        " [1] ",
        "\ufeff[1]",
        "[1] x",
        "[1",
        "",
        "nope",
        '"s"',
        "1.5e3",
        "[NaN]",
        '{"a":1}\n',
    ],
)
def test_json_text_reads_as_json_loads_reads_it(text: str) -> None:
    def outcome(read: Any) -> Any:
        try:
            return "value", read(text)
        except ValueError as exc:
            return type(exc).__name__, str(exc)

    assert outcome(redis_codec._loads) == outcome(json.loads)


STATES: list[dict[str, Any]] = [
    {
        "format": 2,
        "seq": 2,
        "vars": {"a": 1},
        "tokens": {"t2": {"el": "r", "scope": "root", "flow": "f", "task": "0-2"}},
    },
    {"format": 2, "seq": 3, "vars": {}, "tokens": {"t1": {"el": "r", "scope": "root"}}, "ended": True},
    {"format": 2, "seq": 3, "vars": {}, "tokens": {}, "subs": {"x": 1}, "mi": {}, "scopes": {"root": {"el": None}}},
    {"format": 2, "seq": 1, "vars": {}, "tokens": {}, "other": 1},
    {"format": 2, "seq": 1, "vars": {}},
    {"format": 1, "anything": [1]},
    {"legacy": True},
    {},
]


@pytest.mark.parametrize("state", STATES)
def test_an_instance_reads_back_as_written_and_as_the_general_path_reads_it(state: dict[str, Any]) -> None:
    full = redis_codec._full_state(json.loads(json.dumps(state)))
    instance = Instance(id="0-1", definition_id="p:1", process_key="p", process_name="P", state=full, create_time=5)
    stored = f"1|||0-9|{redis_codec.instance_body(instance)}"
    read = redis_codec.decode_instance("0-1", stored)
    assert read == instance and read is not None and list(read.state) == list(full)
    # the state member of the body as the general path reads it (the list form, then _full_state)
    listed = json.loads(redis_codec.split_instance(stored)[4])[4]
    if isinstance(listed, list):
        tokens = {
            n: dict(zip(redis_codec._TOKEN_KEYS, t, strict=True)) if isinstance(t, list) else t
            for n, t in listed[2].items()
        }
        general = {"format": 2, "seq": listed[0], "vars": listed[1], "tokens": tokens, **(listed[3:] or [{}])[0]}
        assert list(redis_codec._full_state(general).items()) == list(read.state.items())
    # every read gets defaults of its own (a caller may change them)
    again = redis_codec.decode_instance("0-1", stored)
    assert again is not None and again.state == read.state
    for name in ("scopes", "subs", "mi") if "format" in full else ():
        assert again.state[name] is not read.state[name]


def test_the_state_body_is_the_general_one() -> None:
    for state in STATES:
        general: Any = redis_codec._compact_state(state)
        if state.get("format") == 2 and {"seq", "vars", "tokens"} <= set(state) <= set(redis_codec._STATE_ORDER):
            rest = {n: v for n, v in general.items() if n not in ("format", "seq", "vars", "tokens")}
            tokens = {
                n: [t[k] for k in redis_codec._TOKEN_KEYS]
                if isinstance(t, dict) and tuple(t) == redis_codec._TOKEN_KEYS
                else t
                for n, t in state["tokens"].items()
            }
            general = [state["seq"], state["vars"], tokens, rest] if rest else [state["seq"], state["vars"], tokens]
        assert redis_codec._state_body(state) == general
