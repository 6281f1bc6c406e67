"""The immutable syntax tree the parser builds and the evaluator walks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class _Name:
    name: str


@dataclass(frozen=True, slots=True)
class _Attr:
    target: _Node
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    target: _Node
    key: _Node


@dataclass(frozen=True, slots=True)
class _ListDisplay:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _MethodCall:
    target: _Node
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Empty:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Logical:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Compare:
    ops: tuple[str, ...]
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Conditional:
    test: _Node
    then: _Node
    orelse: _Node


@dataclass(frozen=True, slots=True)
class _Template:
    parts: tuple[str | _Node, ...]


@dataclass(frozen=True, slots=True)
class _Loop:
    """FEEL ``some``/``every ... satisfies`` and ``for ... return`` over one or more contexts.

    ``some x in a, y in b satisfies c`` binds ``x`` to each item of ``a``, then
    ``y`` to each item of ``b`` (which may use ``x``), and so on: the contexts
    nest, and the condition or ``return`` body sees every name bound. A bound
    name shadows a variable of the same name in the later domains and the body
    only. ``some`` is true when at least one binding satisfies the condition
    (false for an empty list), ``every`` when all do (true for an empty list);
    both stop at the first binding that decides. ``for`` returns the list of
    body values, one per binding (the cartesian product, flattened). A domain
    must be a list.
    """

    kind: str  # "some" | "every" | "for"
    names: tuple[str, ...]
    domains: tuple[_Node, ...]
    body: _Node


_Node = (
    _Literal
    | _Name
    | _Attr
    | _Index
    | _ListDisplay
    | _Call
    | _MethodCall
    | _Unary
    | _Not
    | _Empty
    | _Logical
    | _Binary
    | _Compare
    | _Conditional
    | _Template
    | _Loop
)
_N = TypeVar("_N", bound=_Node)
