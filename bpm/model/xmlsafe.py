"""Safe loading of BPMN XML and the small helpers every part of the parser uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from lxml import etree

from bpm.errors import InvalidDefinition, UnsupportedElement

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FLOWABLE_NS = "http://flowable.org/bpmn"
ACTIVITI_NS = "http://activiti.org/bpmn"
BPMR_NS = "http://bpm-runtime.dev/schema/1.0"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
#: Vendor namespaces whose assignment attributes we read, in order of precedence.
VENDOR_NAMESPACES = (CAMUNDA_NS, FLOWABLE_NS, ACTIVITI_NS)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_DTD_MESSAGE = "DTDs and entity declarations are not allowed"
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_E = TypeVar("_E", bound=InvalidDefinition)


# --- safe XML loading ------------------------------------------------------


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _load_xml(data: bytes, file: str, max_bytes: int) -> etree._Element:
    if not isinstance(data, bytes | bytearray):
        raise InvalidDefinition("BPMN data must be bytes", file=file)
    if len(data) > max_bytes:
        raise InvalidDefinition(f"file is too large ({len(data)} bytes, limit {max_bytes})", file=file)
    raw = bytes(data)
    if not raw.strip():
        raise InvalidDefinition("empty document", file=file)
    _reject_dtd_markers(raw, file)
    try:
        root = etree.fromstring(raw, _make_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidDefinition(f"malformed XML: {exc.msg}", file=file, line=exc.lineno or None) from exc
    except (etree.LxmlError, ValueError, LookupError) as exc:
        raise InvalidDefinition(f"malformed XML: {exc}", file=file) from exc
    if root is None:
        raise InvalidDefinition("empty document", file=file)
    _reject_dtd_docinfo(root, file)
    return root


def _reject_dtd_markers(raw: bytes, file: str) -> None:
    """Refuse DOCTYPE/ENTITY before parsing (NULs dropped to catch UTF-16/32)."""
    probe = raw.replace(b"\x00", b"") if b"\x00" in raw else raw
    probe = probe.upper()
    for marker in _DTD_MARKERS:
        at = probe.find(marker)
        if at >= 0:
            line = probe.count(b"\n", 0, at) + 1
            raise InvalidDefinition(_DTD_MESSAGE, file=file, line=line)


def _reject_dtd_docinfo(root: etree._Element, file: str) -> None:
    info = root.getroottree().docinfo
    if (
        info.doctype
        or info.internalDTD is not None
        or info.externalDTD is not None
        or info.system_url
        or info.public_id
    ):
        raise InvalidDefinition(_DTD_MESSAGE, file=file, line=1)


# --- small XML helpers -----------------------------------------------------


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname


def _is_bpmn(node: etree._Element) -> bool:
    return isinstance(node.tag, str) and node.tag.startswith(f"{{{BPMN_NS}}}")


def _bpmn_children(node: etree._Element, tag: str | None = None) -> Iterator[etree._Element]:
    for child in node:
        if _is_bpmn(child) and (tag is None or _local(child) == tag):
            yield child


def _text(node: etree._Element) -> str:
    return "".join(node.itertext()).strip()


def _name(node: etree._Element) -> str:
    return (node.get("name") or "").strip()


def _documentation(node: etree._Element) -> str:
    texts = (_text(doc) for doc in _bpmn_children(node, "documentation"))
    return "\n".join(text for text in texts if text)


def _vendor_attr(node: etree._Element, name: str) -> str | None:
    """The first non-empty camunda:/flowable:/activiti: attribute ``name``, stripped."""
    for namespace in VENDOR_NAMESPACES:
        value = (node.get(f"{{{namespace}}}{name}") or "").strip()
        if value:
            return value
    return None


def _invalid(
    file: str,
    node: etree._Element,
    message: str,
    *,
    at: etree._Element | None = None,
    element_id: str | None = None,
    attribute: str | None = None,
    fix: str | None = None,
) -> InvalidDefinition:
    """An INVALID_BPMN error about ``node``, positioned at ``at`` (default: node)."""
    error = _positioned(InvalidDefinition, file, node, message, at, element_id)
    error.attribute, error.fix = attribute, fix
    return error


def _unsupported(
    file: str,
    node: etree._Element,
    message: str,
    *,
    at: etree._Element | None = None,
) -> UnsupportedElement:
    """An UNSUPPORTED_ELEMENT error about ``node``, positioned at ``at``."""
    return _positioned(UnsupportedElement, file, node, message, at, None)


def _positioned(
    error: type[_E],
    file: str,
    node: etree._Element,
    message: str,
    at: etree._Element | None,
    element_id: str | None,
) -> _E:
    return error(
        message,
        file=file,
        element_id=element_id or node.get("id"),
        tag=_local(node),
        line=(at if at is not None else node).sourceline,
    )
