"""Immutable process specs: what the parser builds and the engine walks.

A spec is shared by every instance of one deployed definition, so nothing here
may be mutated after parsing (frozen dataclasses, tuples, read-only mappings).
Elements of embedded subprocesses live in the same flat ``elements`` map; each
element names its enclosing subprocess in ``scope`` (``None`` at process level).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol


class Evaluable(Protocol):
    """A compiled expression or template (see :mod:`bpm.expressions`)."""

    source: str

    def evaluate(self, variables: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class SequenceFlow:
    id: str
    source: str
    target: str
    name: str = ""
    condition: Evaluable | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Element:
    """A flow node. ``tag`` is the BPMN local tag name (``task``, ``manualTask`` ...)."""

    id: str
    tag: str
    name: str = ""
    scope: str | None = None
    incoming: tuple[str, ...] = ()
    outgoing: tuple[str, ...] = ()
    default: str | None = None
    documentation: str = ""
    line: int | None = None

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class StartEvent(Element):
    """A none start event. ``initiator`` names the variable that receives the starter."""

    initiator: str | None = None


@dataclass(frozen=True, slots=True)
class EndEvent(Element):
    terminate: bool = False


@dataclass(frozen=True, slots=True)
class ExclusiveGateway(Element):
    pass


@dataclass(frozen=True, slots=True)
class ParallelGateway(Element):
    pass


@dataclass(frozen=True, slots=True)
class UserTask(Element):
    """A user task and its assignment, each part a compiled template or None.

    The candidate tuples hold one template per comma-separated entry; a template
    may evaluate to a string (itself possibly comma-separated) or a list.
    """

    assignee: Evaluable | None = None
    candidate_users: tuple[Evaluable, ...] = ()
    candidate_groups: tuple[Evaluable, ...] = ()
    candidate_roles: tuple[Evaluable, ...] = ()
    due_date: Evaluable | None = None
    priority: Evaluable | None = None
    form_key: str | None = None


@dataclass(frozen=True, slots=True)
class SubProcess(Element):
    """An embedded subprocess; its children have ``scope == self.id``."""

    start_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One executable BPMN ``process``: its key (BPMN id), name and graph."""

    key: str
    name: str
    elements: Mapping[str, Element]
    flows: Mapping[str, SequenceFlow]
    start_ids: tuple[str, ...]
    executable: bool = True
    documentation: str = ""
    version_tag: str | None = None
    file: str | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def label(self) -> str:
        return self.name or self.key

    def element(self, element_id: str) -> Element:
        return self.elements[element_id]

    def flow(self, flow_id: str) -> SequenceFlow:
        return self.flows[flow_id]
