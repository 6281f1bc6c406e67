"""The tokenizer: source text to tokens whose positions index the source."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple, NoReturn

from bpm.expressions.limits import MAX_INT
from bpm.expressions.values import _clip, _error


class _Token(NamedTuple):
    kind: str  # "num", "str", "name", "kw", "op" or "end"
    value: Any
    pos: int


_KEYWORDS: Final = frozenset(
    {
        "and", "or", "not", "in", "is", "if", "then", "else",
        "div", "mod", "eq", "ne", "lt", "gt", "le", "ge", "empty",
        "true", "false", "True", "False", "null", "None",
    }
)  # fmt: skip
_CONSTANTS: Final[Mapping[str, Any]] = MappingProxyType(
    {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
)
_OPERATORS: Final = (
    "**", "//", "==", "!=", "<=", ">=", "&&", "||",
    "+", "-", "*", "/", "%", "<", ">", "=", "!", "?", ":", "(", ")", "[", "]", ",", ".",
)  # fmt: skip
_SPACE_RE: Final = re.compile(r"\s+")
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE: Final = re.compile(r"(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+(?:[eE][+-]?[0-9]+)?")
_ESCAPES: Final[Mapping[str, str]] = MappingProxyType(
    {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", "'": "'", '"': '"', "/": "/"}
)
_HEX4_RE: Final = re.compile(r"[0-9A-Fa-f]{4}")


class _Scanner:
    """Turns ``source[start:end]`` into tokens whose positions index ``source``."""

    def __init__(self, source: str, start: int, end: int) -> None:
        self.source = source
        self.pos = start
        self.end = end

    def fail(self, message: str) -> NoReturn:
        raise _error(f"syntax error: {message} at position {self.pos}", self.source)

    def tokens(self) -> list[_Token]:
        result: list[_Token] = []
        while True:
            token = self.next_token()
            result.append(token)
            if token.kind == "end":
                return result

    def next_token(self) -> _Token:
        space = _SPACE_RE.match(self.source, self.pos, self.end)
        if space:
            self.pos = space.end()
        if self.pos >= self.end:
            return _Token("end", None, self.pos)
        char = self.source[self.pos]
        if char in "'\"":
            return self.string(char)
        number = _NUMBER_RE.match(self.source, self.pos, self.end)
        if number:
            return self.number(number.group())
        name = _NAME_RE.match(self.source, self.pos, self.end)
        if name:
            return self.word(name.group())
        return self.operator()

    def word(self, text: str) -> _Token:
        token = _Token("kw" if text in _KEYWORDS else "name", text, self.pos)
        self.pos += len(text)
        return token

    def number(self, text: str) -> _Token:
        start = self.pos
        self.pos += len(text)
        if _NAME_RE.match(self.source, self.pos, self.end):
            self.fail(f"invalid number '{_clip(text)}'")
        if "." in text or "e" in text or "E" in text:
            value: int | float = float(text)
            if not math.isfinite(value):
                self.fail(f"number '{_clip(text)}' is out of range")
        else:
            value = int(text)
            if value > MAX_INT:
                self.fail("integer literal exceeds 10**100")
        return _Token("num", value, start)

    def operator(self) -> _Token:
        for op in _OPERATORS:
            if self.source.startswith(op, self.pos, self.end):
                token = _Token("op", op, self.pos)
                self.pos += len(op)
                return token
        self.fail(f"unexpected character {self.source[self.pos]!r}")

    def string(self, quote: str) -> _Token:
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < self.end:
            char = self.source[self.pos]
            if char == quote:
                self.pos += 1
                return _Token("str", "".join(chars), start)
            if char == "\\":
                chars.append(self.escape())
            else:
                chars.append(char)
                self.pos += 1
        self.pos = start
        self.fail("unterminated string")

    def escape(self) -> str:
        """Decode the backslash escape at ``pos``; unknown escapes stay as written."""
        nxt = self.source[self.pos + 1] if self.pos + 1 < self.end else ""
        hex_end = self.pos + 6
        if nxt == "u" and hex_end <= self.end and _HEX4_RE.fullmatch(self.source, hex_end - 4, hex_end):
            self.pos = hex_end
            return chr(int(self.source[hex_end - 4 : hex_end], 16))
        if nxt in _ESCAPES:
            self.pos += 2
            return _ESCAPES[nxt]
        self.pos += 1
        return "\\"
