"""What one engine step produces: its new state and its side effects, as plain records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)  # not frozen: made once per user task, and a frozen record's __init__ is slow
class NewTask:
    """A user task the step opened, with its assignment resolved (read-only by convention)."""

    id: str
    element_id: str
    name: str
    description: str
    assignee: str | None
    candidate_users: tuple[str, ...]
    candidate_groups: tuple[str, ...]
    candidate_roles: tuple[str, ...]
    due_date: int | None
    priority: int
    form_key: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewExternalTask:
    """Service work the step created for an external worker."""

    id: str
    element_id: str
    name: str
    topic: str
    retries: int
    priority: int
    kind: str
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A wait for a timer, message or signal; ``id`` is unique within the instance."""

    id: str
    kind: str
    element_id: str
    name: str | None = None
    due: int | None = None


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A call activity asks for a child instance ``child_id`` of process ``process_key``."""

    token_id: str
    element_id: str
    child_id: str
    process_key: str
    binding: str
    version: str | None
    variables: Mapping[str, Any]
    business_key: str | None = None


@dataclass(frozen=True, slots=True)
class Thrown:
    """A message or signal the step throws (a notification, or a broadcast to deliver)."""

    kind: str
    name: str
    element_id: str
    variables: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UncaughtError:
    """A BPMN error nothing in this instance caught; the token that threw it has ended.

    A calling process may still catch it at its call activity (the planner walks up).
    """

    code: str | None
    message: str
    element_id: str


@dataclass(slots=True, init=False)
class StepResult:
    """What one engine step produced: the new state and its side effects."""

    state: dict[str, Any]
    created: list[NewTask]
    cancelled: list[str]
    externals: list[NewExternalTask]
    externals_cancelled: list[str]
    subscribed: list[Subscription]
    unsubscribed: list[Subscription]
    calls: list[CallRequest]
    calls_cancelled: list[str]
    thrown: list[Thrown]
    history: list[dict[str, Any]]
    uncaught: list[UncaughtError]
    #: the epoch ms the engine step ran at (its history's time), when one engine step made it
    now: int | None = field(default=None, compare=False)

    def __init__(  # by hand: two per use case, and eleven default factories are slow
        self,
        state: dict[str, Any],
        created: list[NewTask] | None = None,
        cancelled: list[str] | None = None,
        externals: list[NewExternalTask] | None = None,
        externals_cancelled: list[str] | None = None,
        subscribed: list[Subscription] | None = None,
        unsubscribed: list[Subscription] | None = None,
        calls: list[CallRequest] | None = None,
        calls_cancelled: list[str] | None = None,
        thrown: list[Thrown] | None = None,
        history: list[dict[str, Any]] | None = None,
        uncaught: list[UncaughtError] | None = None,
    ) -> None:
        self.state = state
        self.created = [] if created is None else created
        self.cancelled = [] if cancelled is None else cancelled
        self.externals = [] if externals is None else externals
        self.externals_cancelled = [] if externals_cancelled is None else externals_cancelled
        self.subscribed = [] if subscribed is None else subscribed
        self.unsubscribed = [] if unsubscribed is None else unsubscribed
        self.calls = [] if calls is None else calls
        self.calls_cancelled = [] if calls_cancelled is None else calls_cancelled
        self.thrown = [] if thrown is None else thrown
        self.history = [] if history is None else history
        self.uncaught = [] if uncaught is None else uncaught
        self.now = None

    @property
    def ended(self) -> bool:
        return bool(self.state["ended"])


def new_result(state: dict[str, Any]) -> StepResult:
    """``StepResult(state)``: the result a step starts from, without ``type.__call__`` (two per use case)."""
    result: StepResult = _new(StepResult)
    result.state = state
    result.created = []
    result.cancelled = []
    result.externals = []
    result.externals_cancelled = []
    result.subscribed = []
    result.unsubscribed = []
    result.calls = []
    result.calls_cancelled = []
    result.thrown = []
    result.history = []
    result.uncaught = []
    result.now = None
    return result


_new = object.__new__
