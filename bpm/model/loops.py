"""Loop characteristics of activities: multi-instance and standard loops."""

from __future__ import annotations

from lxml import etree

from bpm.model.context import (
    _bool_attr,
    _compiled,
    _Context,
    _expression,
    _extension,
    _int_attr,
    _template,
    _variable_name,
)
from bpm.model.spec import Evaluable, LoopSpec
from bpm.model.xmlsafe import ZEEBE_NS, _bpmn_children, _invalid, _local, _name, _text, _vendor_attr

_LOOPS = frozenset({"multiInstanceLoopCharacteristics", "standardLoopCharacteristics"})


def _loop(ctx: _Context, node: etree._Element) -> LoopSpec | None:
    loops = [child for child in _bpmn_children(node) if _local(child) in _LOOPS]
    if not loops:
        return None
    if len(loops) > 1:
        raise _invalid(ctx.file, node, "an activity has at most one loop characteristics", at=loops[1])
    loop = loops[0]
    if _local(loop) == "standardLoopCharacteristics":
        return _standard_loop(ctx, node, loop)
    return _multi_instance(ctx, node, loop)


def _standard_loop(ctx: _Context, node: etree._Element, loop: etree._Element) -> LoopSpec:
    condition = None
    for child in _bpmn_children(loop, "loopCondition"):
        condition = condition or _expression(ctx, node, "loopCondition", child)
    maximum = _int_attr(ctx, node, loop, "loopMaximum")
    if condition is None and maximum is None:
        raise _invalid(ctx.file, node, "standard loop needs a loopCondition or a loopMaximum", at=loop)
    return LoopSpec(
        kind="standard",
        loop_condition=condition,
        test_before=_bool_attr(ctx, node, loop, "testBefore", False),
        maximum=maximum,
    )


def _multi_instance(ctx: _Context, node: etree._Element, loop: etree._Element) -> LoopSpec:
    cardinality = completion = None
    for child in _bpmn_children(loop, "loopCardinality"):
        if cardinality is None and _text(child):
            cardinality = _template(ctx, node, "loopCardinality", _text(child), at=child)
    for child in _bpmn_children(loop, "completionCondition"):
        completion = completion or _expression(ctx, node, "completionCondition", child)
    collection = _loop_collection(ctx, node, loop)
    if cardinality is None and collection is None:
        message = (
            "multi-instance needs a loopCardinality or a collection "
            "(camunda:collection, loopDataInputRef or zeebe:loopCharacteristics inputCollection)"
        )
        raise _invalid(ctx.file, node, message, at=loop)
    return LoopSpec(
        kind="multi",
        sequential=_bool_attr(ctx, node, loop, "isSequential", False),
        cardinality=cardinality,
        collection=collection,
        element_variable=_element_variable(ctx, node, loop),
        completion_condition=completion,
    )


def _loop_collection(ctx: _Context, node: etree._Element, loop: etree._Element) -> Evaluable | None:
    """``camunda:collection``, else ``loopDataInputRef``, else Zeebe ``inputCollection``."""
    named = _vendor_attr(loop, "collection")
    if named is not None:
        return _collection(ctx, node, named, loop)
    for child in _bpmn_children(loop, "loopDataInputRef"):
        if _text(child):
            return _collection(ctx, node, _data_name(ctx, _text(child)), child)
    zeebe = _extension(loop, ZEEBE_NS, "loopCharacteristics")
    text = (zeebe.get("inputCollection") or "").strip() if zeebe is not None else ""
    if zeebe is None or not text:
        return None
    return _compiled(ctx, node, "inputCollection", text, "feel", zeebe)


def _element_variable(ctx: _Context, node: etree._Element, loop: etree._Element) -> str | None:
    """``camunda:elementVariable``, else ``inputDataItem`` (name, else id), else Zeebe ``inputElement``."""
    name = _variable_name(ctx, node, "elementVariable", _vendor_attr(loop, "elementVariable"), loop)
    if name is not None:
        return name
    for child in _bpmn_children(loop, "inputDataItem"):
        item = _name(child) or (child.get("id") or "").strip()
        if item:
            return item
    zeebe = _extension(loop, ZEEBE_NS, "loopCharacteristics")
    if zeebe is None:
        return None
    return _variable_name(ctx, node, "inputElement", (zeebe.get("inputElement") or "").strip() or None, zeebe)


def _collection(ctx: _Context, node: etree._Element, text: str, at: etree._Element) -> Evaluable:
    """A collection: an expression (``${list}``) or the name of a variable holding it."""
    source = text if ("${" in text or "#{" in text) else "${" + text + "}"
    return _template(ctx, node, "collection", source, at=at)


def _data_name(ctx: _Context, ref: str) -> str:
    """The variable a ``loopDataInputRef`` names: the referenced data element's
    name when it is a usable variable name, else the reference as written."""
    target = ctx.declarations.ids.get(ref)
    name = _name(target) if target is not None else ""
    return name if name.isidentifier() and not name.startswith("_") else ref
