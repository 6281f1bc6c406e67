"""bpm/jsontext.py's one_shot writes what JSONEncoder.encode writes, and raises what it raises."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest

from bpm.jsontext import one_shot

VALUES: list[Any] = [
    "plain",
    'ünï\u2028\udc80"\\\n',
    "",
    0,
    -12,
    2**70,
    1.5,
    -0.0,
    1e300,
    True,
    None,
    [],
    {},
    [1, "two", [3.25, {"four": None}], (5, 6)],
    {"b": 1, "a": [True, False], "ü": {"x": "y"}, 3: "int key", 2.5: "float key", None: "none key", False: "f"},
    {"nested": [[[[{"deep": ["er"]}]]]]},
]
SETTINGS: list[dict[str, Any]] = [
    {"ensure_ascii": False, "separators": (",", ":")},
    {"ensure_ascii": True, "separators": (",", ":"), "sort_keys": False},
    {"separators": (", ", ": "), "skipkeys": True},
    {"check_circular": False},
    {"default": str, "separators": (",", ":")},
]


def outcome(encode: Any, value: Any) -> tuple[str, str]:
    try:
        return "text", encode(value)
    except Exception as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_same_text_as_encode(settings: dict[str, Any]) -> None:
    encoder = json.JSONEncoder(**settings)
    fast = one_shot(encoder)
    assert fast is not encoder.encode
    for value in VALUES:
        assert outcome(fast, value) == outcome(encoder.encode, value)


def test_the_same_errors_as_encode() -> None:
    circular: list[Any] = [1]
    circular.append(circular)
    looped: dict[str, Any] = {}
    looped["self"] = looped
    shared = [1, 2]
    odd: list[Any] = [
        circular,
        looped,
        {"set": {1, 2}},
        Decimal("1.5"),
        {(1, 2): "tuple key"},
        [shared, shared],  # the same list twice is not circular
        math.nan,
        [math.inf, -math.inf],
    ]
    for settings in [*SETTINGS, {"allow_nan": False}, {"sort_keys": True}]:
        encoder = json.JSONEncoder(**settings)
        fast = one_shot(encoder)
        for value in odd:
            if not encoder.check_circular and (value is circular or value is looped):
                continue  # a RecursionError either way
            assert outcome(fast, value) == outcome(encoder.encode, value)
            assert outcome(fast, value) == outcome(encoder.encode, value)  # nothing left over from a failure


def test_mixed_keys_sorted_fail_as_encode_fails() -> None:
    encoder = json.JSONEncoder(sort_keys=True)
    assert outcome(one_shot(encoder), {"a": 1, 2: 3}) == outcome(encoder.encode, {"a": 1, 2: 3})


def test_encoders_it_cannot_stand_in_for_keep_their_encode() -> None:
    class Upper(json.JSONEncoder):
        def encode(self, o: Any) -> str:
            return super().encode(o).upper()

    indented = json.JSONEncoder(indent=2)
    assert one_shot(indented) == indented.encode
    upper = Upper()
    assert one_shot(upper)("x") == '"X"'


def test_a_subclass_default_is_used() -> None:
    class Sets(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            return sorted(o) if isinstance(o, set) else super().default(o)

    encoder = Sets(separators=(",", ":"))
    assert one_shot(encoder)({"s": {3, 1}}) == encoder.encode({"s": {3, 1}}) == '{"s":[1,3]}'
