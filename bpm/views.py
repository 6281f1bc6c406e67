"""Read models the API shows: plain records built from stored state, never engine state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bpm.engine.engine import called_children, waiting_elements
from bpm.errors import InstanceNotFound
from bpm.records import ExternalTaskRecord, Instance, Task

if TYPE_CHECKING:
    from backends.base import Backend


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One process instance as a person or client reads it."""

    id: str
    definition_id: str
    process_name: str
    create_by: str
    create_time: int
    ended: bool
    end_time: int | None
    variables: dict[str, Any]
    active_tasks: list[str]
    business_key: str
    parent_id: str | None
    active_elements: list[str]
    incidents: list[dict[str, Any]]
    external_tasks: list[str]
    history_truncated: bool = False


def external_incidents(externals: list[ExternalTaskRecord]) -> list[dict[str, Any]]:
    """The incidents among an instance's external tasks (out of retries)."""
    return [
        {
            "id": e.id,
            "type": "externalTask",
            "element_id": e.element_id,
            "topic": e.topic,
            "error_message": e.error_message,
            "error_details": e.error_details,
        }
        for e in externals
        if e.incident
    ]


def timer_incidents(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The timers of an instance state that kept failing."""
    return [
        {
            "id": sub_id,
            "type": "timer",
            "element_id": sub["el"],
            "topic": None,
            "error_message": sub.get("error"),
            "error_details": None,
        }
        for sub_id, sub in state.get("subs", {}).items()
        if sub.get("incident")
    ]


def instance_view(instance: Instance, tasks: list[Task], externals: list[ExternalTaskRecord]) -> InstanceView:
    """The view of ``instance`` with its active tasks and external tasks (as the backend listed them)."""
    return InstanceView(
        id=instance.id,
        definition_id=instance.definition_id,
        process_name=instance.process_name,
        create_by=instance.create_by,
        create_time=instance.create_time,
        ended=instance.ended,
        end_time=instance.end_time,
        variables=instance.state.get("vars", {}),
        active_tasks=[t.id for t in tasks],
        business_key=instance.business_key,
        parent_id=instance.parent_id,
        active_elements=waiting_elements(instance.state),
        incidents=external_incidents(externals) + timer_incidents(instance.state),
        external_tasks=[e.id for e in externals],
        history_truncated=instance.history_truncated,
    )


def task_tree(backend: Backend, instance_id: str) -> list[Task]:
    """The active tasks of the instance and of the instances its call activities started,
    recursively: breadth first, the instance's tasks, then its children's by child id, then
    theirs. Per level of calls: one read of its instances, one of each active instance's tasks.
    Raises InstanceNotFound for an unknown ``instance_id``."""
    found: list[Task] = []
    level, seen = [instance_id], {instance_id}
    while level:  # one level of calls at a time: one read of its instances
        children: list[str] = []
        for current, instance in zip(level, backend.instances(level), strict=True):
            if instance is None and current == instance_id:
                raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
            if instance is None or instance.ended:
                continue  # a child ended, or was removed meanwhile
            try:
                found += backend.instance_tasks(current)
            except InstanceNotFound:
                continue
            children += [c for c in called_children(instance.state) if c not in seen]
        seen.update(children)
        level = children
    return found
