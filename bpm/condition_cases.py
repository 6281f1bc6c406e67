"""Conditional start events: started by an explicit evaluation, as Camunda 7's ``POST /condition``.

Nothing in a running system changes "the variables" of a process that has not
started, so a conditional start event is triggered by asking: the caller sends
variables (and may name one process key); every latest deployed process with a
conditional start event whose condition holds for those variables starts there,
with those variables. The conditions are all evaluated before anything starts,
so a condition that fails (other than by reading a variable that does not
exist, which is false, as Camunda's ``tryEvaluate``) starts nothing. A start
event with ``camunda:variableName`` is evaluated only when that variable is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpm.committer import Committer, StartAt
from bpm.engine import conditions
from bpm.engine.evaluation import evaluation_context
from bpm.errors import ProcessNotFound
from bpm.model.spec import ProcessSpec, StartEvent
from bpm.records import Definition


class ConditionCases:
    """Evaluate the conditional start events of the deployed processes."""

    def __init__(self, committer: Committer, start_at: StartAt | None = None) -> None:
        self.committer = committer
        self.start_at: StartAt = start_at or committer.start_at

    def conditional_starts(self, process_key: str | None = None) -> list[tuple[Definition, ProcessSpec, StartEvent]]:
        """The conditional start events of the latest versions (of ``process_key`` only, when given)."""
        cache = self.committer.cache
        cache.refresh_if_stale()
        found: list[tuple[Definition, ProcessSpec, StartEvent]] = []
        for definition in sorted(cache.latest(), key=lambda d: (d.key, d.app_name)):
            if process_key is not None and definition.key != process_key:
                continue
            spec = cache.spec(definition)
            for start_id in spec.event_start_ids:
                start = spec.elements[start_id]
                if isinstance(start, StartEvent) and start.event is not None and start.event.kind == "conditional":
                    found.append((definition, spec, start))
        if process_key is not None and not any(d.key == process_key for d in cache.latest()):
            raise ProcessNotFound(f"no deployed process has the key '{process_key}'")
        return found

    def evaluate_start_conditions(
        self,
        variables: Mapping[str, Any],
        *,
        process_key: str | None = None,
        business_key: str | None = None,
        user: str | None = None,
    ) -> list[str]:
        """Start every process whose conditional start event holds for ``variables``; their new instance ids."""
        c = self.committer
        chosen = []
        with evaluation_context(c.now_ms, c.engine.beans):
            for definition, spec, start in self.conditional_starts(process_key):
                assert start.event is not None
                name = start.event.variable_name
                if name is not None and name not in variables:
                    continue
                if conditions.holds(start.event, variables, start):
                    chosen.append((definition, spec, start))
        return [
            self.start_at(definition, spec, start.id, dict(variables), user=user, business_key=business_key)
            for definition, spec, start in chosen
        ]
