"""BPMN 2.0 XML -> immutable process specs."""

from bpm.model.spec import (
    Element,
    EndEvent,
    ExclusiveGateway,
    ParallelGateway,
    ProcessSpec,
    SequenceFlow,
    StartEvent,
    SubProcess,
    UserTask,
)

__all__ = [
    "Element",
    "EndEvent",
    "ExclusiveGateway",
    "ParallelGateway",
    "ProcessSpec",
    "SequenceFlow",
    "StartEvent",
    "SubProcess",
    "UserTask",
]
