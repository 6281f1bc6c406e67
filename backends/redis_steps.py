"""How a list of engine steps travels to apply_steps.lua: plain script arguments.

Each step is a fixed block of STEP_FIELDS arguments (strings the script uses as they are),
then its history entries, then its created tasks (each a count and that many arguments:
the task id and its hash field/value pairs). What only some steps have (cancelled tasks,
external tasks, subscriptions) is one JSON object in the block, "" when the step has none
of it: the script decodes JSON only for those steps. A step completing a task may carry
what the completion was decided on (flag ``x``): right after its block, the values of
:data:`backends.redis_recent.DECIDED_FIELDS` the decision read ("" for an absent field),
which the script compares with the task's stored ones (a difference: a concurrent
modification). Nothing here is stored: the stored layout is :mod:`backends.redis_codec`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import Step, SubscriptionIndex, check_subscription
from backends.redis_codec import as_json, encode, history_json, instance_body

__all__ = ["STEP_FIELDS", "step_args"]

#: the arguments of a step's fixed block, in order (apply_steps.lua reads them by position)
STEP_FIELDS = (
    "id",  # the instance id
    "flags",  # n new, e ended, t history truncated, c completed_by given, x decided fields follow
    "expected",  # the rev the instance must have now ("0" for a new one)
    "rev",  # its rev after the step
    "pk",  # process key, business key and create time: the instance lists' keys and score
    "bk",
    "ct",
    "now",
    "complete_task",  # the task the step completes, or ""
    "completed_by",  # who completed it (flag c; else "" and the script reads false)
    "body",  # the body of the instance's stored value (instance_body)
    "history",  # how many history entries follow the block
    "created",  # how many created tasks follow the entries
    "rest",  # JSON of the members below, "" when all are at their default
)


def step_args(steps: list[Step], decided: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """apply_steps.lua's arguments after the head (see the module docstring); ``decided``: by
    task id, the DECIDED_FIELDS values a completion of it was decided on.

    Raises ValueError for a ``new`` step whose rev is not 1 or a bad subscription."""
    out: list[str] = []
    for step in steps:
        instance = step.instance
        if step.new and instance.rev != 1:
            raise ValueError(f"a new process instance starts at rev 1, not {instance.rev}")
        flags = (
            ("n" if step.new else "")
            + ("e" if instance.ended else "")
            + ("t" if instance.history_truncated else "")
            + ("c" if step.completed_by else "")
        )
        expected = decided.get(step.complete_task) if decided and step.complete_task else None
        if expected is not None:
            flags += "x"
        created, definition_id = instance.create_time, instance.definition_id
        history = [history_json(entry, created, definition_id) for entry in step.history]
        rest = _rest(step)
        out += (
            instance.id,
            flags,
            str(instance.rev - 1),
            str(instance.rev),
            instance.process_key,
            instance.business_key,
            str(created),
            str(step.now),
            step.complete_task or "",
            step.completed_by or "",
            instance_body(instance),
            str(len(history)),
            str(len(step.created)),
            as_json(rest) if rest else "",
        )
        if expected is not None:
            out += expected
        out += history
        for task in step.created:
            fields = encode(task)
            out.append(str(1 + 2 * len(fields)))
            out.append(task.id)
            for pair in fields.items():
                out += pair
    return out


def _rest(step: Step) -> dict[str, Any]:
    """The members of a step beside its fixed block, those not at their default (false, "", [])."""
    for sub in (*step.subscribed, *step.unsubscribed):
        check_subscription(sub)
    rest: dict[str, Any] = {}
    if step.cancelled:
        rest["cancelled"] = step.cancelled
    if step.complete_external:
        rest["complete_external"] = step.complete_external
    if step.external_worker:
        rest["external_worker"] = step.external_worker
    if step.externals:
        rest["externals"] = [encode(ext) for ext in step.externals]
    if step.externals_cancelled:
        rest["externals_cancelled"] = step.externals_cancelled
    if step.subscribed:
        rest["subscribed"] = [subscription_json(sub) for sub in step.subscribed]
    if step.unsubscribed:
        rest["unsubscribed"] = [subscription_json(sub) for sub in step.unsubscribed]
    return rest


def subscription_json(sub: SubscriptionIndex) -> list[str]:
    due = "" if sub.due is None else str(sub.due)
    return [sub.kind, sub.name or "", sub.member, due]
