"""The state of one process being read, and the attribute/expression helpers of the builders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from bpm.errors import ExpressionError
from bpm.expressions import compile_expression, compile_template
from bpm.model.spec import (
    DeployWarning,
    Element,
    Evaluable,
)
from bpm.model.xmlsafe import (
    _bpmn_children,
    _documentation,
    _invalid,
    _local,
    _name,
    _text,
)

#: Top-level declarations an event definition refers to, and the attributes
#: giving the name or code it resolves to (in order), the id being the fallback.
_DECLARATIONS = {
    "message": ("name",),
    "signal": ("name",),
    "error": ("errorCode", "name"),
    "escalation": ("escalationCode", "name"),
}


def _claim_id(
    file: str,
    seen: dict[str, etree._Element],
    node: etree._Element,
    element_id: str | None = None,
) -> str:
    """Return the node's id (or ``element_id``), refusing a missing or used one."""
    element_id = element_id or node.get("id")
    if not element_id or not element_id.strip():
        raise _invalid(file, node, f"<{_local(node)}> has no id")
    first = seen.get(element_id)
    if first is not None:
        message = f"duplicate id '{element_id}' (first used on line {first.sourceline})"
        raise _invalid(file, node, message, element_id=element_id)
    seen[element_id] = node
    return element_id


@dataclass(frozen=True)
class _FlowDraft:
    """A sequence flow as read, before its ends are checked and condition compiled."""

    node: etree._Element
    id: str
    source: str | None
    target: str | None
    name: str
    condition: etree._Element | None


@dataclass(frozen=True)
class _Declarations:
    """What a file declares outside its processes: messages, signals, errors,
    escalations (by kind, then id), and every element with an id (for
    ``loopDataInputRef``)."""

    by_kind: dict[str, dict[str, etree._Element]]
    ids: dict[str, etree._Element]

    @classmethod
    def read(cls, root: etree._Element) -> _Declarations:
        by_kind: dict[str, dict[str, etree._Element]] = {kind: {} for kind in _DECLARATIONS}
        for child in _bpmn_children(root):
            declared = by_kind.get(_local(child))
            element_id = (child.get("id") or "").strip()
            if declared is not None and element_id:
                declared.setdefault(element_id, child)
        ids: dict[str, etree._Element] = {}
        for node in root.iter():
            element_id = node.get("id") if isinstance(node.tag, str) else None
            if element_id:
                ids.setdefault(element_id.strip(), node)
        return cls(by_kind=by_kind, ids=ids)


@dataclass
class _Context:
    """Mutable state while one process is read (document order kept)."""

    file: str
    seen: dict[str, etree._Element]
    declarations: _Declarations
    elements: dict[str, Element] = field(default_factory=dict)
    nodes: dict[str, etree._Element] = field(default_factory=dict)
    flows: list[_FlowDraft] = field(default_factory=list)
    #: what the engine does not honour, shared by every process of the file
    warnings: list[DeployWarning] = field(default_factory=list)

    def add_element(self, element: Element, node: etree._Element) -> None:
        self.elements[element.id] = element
        self.nodes[element.id] = node

    def warn(
        self,
        node: etree._Element,
        at: etree._Element | None,
        attribute: str,
        message: str,
        instead: str,
        fix: str | None = None,
    ) -> None:
        """Record that ``attribute`` of ``node`` (at child ``at``) is not honoured, and what happens instead."""
        line = (at if at is not None else node).sourceline
        self.warnings.append(DeployWarning(self.file, node.get("id"), line, attribute, message, instead, fix))


def _bool_attr(ctx: _Context, node: etree._Element, owner: etree._Element, name: str, default: bool) -> bool:
    """A boolean attribute of ``owner`` (a child of ``node`` or node itself)."""
    raw = owner.get(name)
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _invalid(ctx.file, node, f'{name}="{raw}" must be true or false', at=owner)


def _int_attr(ctx: _Context, node: etree._Element, owner: etree._Element, name: str) -> int | None:
    """A non-negative integer attribute of ``owner``, None when absent."""
    raw = owner.get(name)
    value = (raw or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise _invalid(ctx.file, node, f'{name}="{raw}" must be a non-negative integer', at=owner)
    return int(value)


def _variable_name(ctx: _Context, node: etree._Element, what: str, name: str | None, at: etree._Element) -> str | None:
    """``name`` if it is a usable variable name (None stays None)."""
    if name is not None and (not name.isidentifier() or name.startswith("_")):
        raise _invalid(ctx.file, node, f"{what} '{name}' is not a valid variable name", at=at)
    return name


def _extensions(node: etree._Element, namespace: str, tag: str) -> Iterator[etree._Element]:
    """The ``{namespace}tag`` children of the node's ``extensionElements``."""
    for extensions in _bpmn_children(node, "extensionElements"):
        yield from extensions.iterchildren(f"{{{namespace}}}{tag}")


def _extension(node: etree._Element, namespace: str, tag: str) -> etree._Element | None:
    return next(_extensions(node, namespace, tag), None)


def _template(ctx: _Context, node: etree._Element, what: str, text: str, at: etree._Element | None = None) -> Evaluable:
    """A compiled attribute template (``what`` names the attribute); syntax errors are INVALID_BPMN here."""
    try:
        return compile_template(text)
    except ExpressionError as exc:
        raise _invalid(ctx.file, node, f"invalid {what} '{text}': {exc.message}", at=at, attribute=what) from exc


def _compiled(
    ctx: _Context,
    node: etree._Element,
    what: str,
    text: str,
    language: str | None,
    at: etree._Element | None = None,
) -> Evaluable:
    """A compiled expression (``what`` names the attribute or child element it comes from)."""
    try:
        return compile_expression(text, language=language)
    except ExpressionError as exc:
        raise _invalid(ctx.file, node, f"invalid {what} '{text}': {exc.message}", at=at, attribute=what) from exc


def _expression(ctx: _Context, node: etree._Element, what: str, expression: etree._Element) -> Evaluable | None:
    """The compiled text of ``expression`` (a child of node), None when it is blank."""
    text = _text(expression)
    if not text:
        return None
    return _compiled(ctx, node, what, text, expression.get("language") or None, expression)


def _common(node: etree._Element, scope: str | None) -> dict[str, Any]:
    """The fields every spec element has."""
    return {
        "id": node.get("id"),
        "tag": _local(node),
        "name": _name(node),
        "scope": scope,
        "default": (node.get("default") or "").strip() or None,
        "documentation": _documentation(node),
        "line": node.sourceline,
    }
