"""Domain errors raised by the model, the engine, the use cases and the backends.

Each error carries a stable UPPER_SNAKE ``code`` and an HTTP ``status``; the API
layer maps them to the envelope of ``API.md`` in one place.
"""

from __future__ import annotations

from typing import Any


class BpmError(Exception):
    """Base class of every error the domain raises on purpose."""

    code = "BPM_ERROR"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data


class ValidationError(BpmError):
    """The request is malformed (missing or bad parameters)."""

    code = "VALIDATION_ERROR"
    status = 400


class NotFound(BpmError):
    """A task, instance, process or definition does not exist."""

    code = "NOT_FOUND"
    status = 404


class TaskNotFound(NotFound):
    code = "TASK_NOT_FOUND"


class InstanceNotFound(NotFound):
    code = "INSTANCE_NOT_FOUND"


class ExternalTaskNotFound(NotFound):
    code = "EXTERNAL_TASK_NOT_FOUND"


class ProcessNotFound(NotFound):
    code = "PROCESS_NOT_FOUND"


class Conflict(BpmError):
    """The request conflicts with the current state."""

    code = "CONFLICT"
    status = 409


class TaskAlreadyClaimed(Conflict):
    code = "TASK_ALREADY_CLAIMED"


class TaskNotActive(Conflict):
    code = "TASK_NOT_ACTIVE"


class ConcurrentModification(Conflict):
    """An optimistic write lost against a concurrent one (retried by the use cases)."""

    code = "CONCURRENT_MODIFICATION"


class Unauthorized(BpmError):
    """No valid credentials: missing, malformed, expired or wrongly signed.

    ``reason`` is the RFC 6750 error code for the ``WWW-Authenticate`` challenge
    (``invalid_token``, ``invalid_request``), or None when no credentials were sent.
    """

    code = "UNAUTHORIZED"
    status = 401

    def __init__(self, message: str, *, reason: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.reason = reason


class Forbidden(BpmError):
    """Valid credentials that do not allow the action."""

    code = "FORBIDDEN"
    status = 403


class NotCandidate(Forbidden):
    code = "NOT_CANDIDATE"


class Unprocessable(BpmError):
    """The request is well formed but cannot be carried out with the data given."""

    code = "UNPROCESSABLE"
    status = 422


class ExpressionError(Unprocessable):
    """An expression is malformed, unsafe, too costly, or refers to a missing name."""

    code = "EXPRESSION_ERROR"


class NoMatchingFlow(Unprocessable):
    """An exclusive gateway found no outgoing flow whose condition holds and no default."""

    code = "NO_MATCHING_FLOW"


class InvalidDefinition(BpmError):
    """A BPMN file cannot be deployed. Names the file, element id, tag and line."""

    code = "INVALID_BPMN"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        file: str | None = None,
        element_id: str | None = None,
        tag: str | None = None,
        line: int | None = None,
        attribute: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.element_id = element_id
        self.tag = tag
        self.line = line
        #: the attribute or child element at fault (``camunda:dueDate``, ``timeCycle`` ...), when one is
        self.attribute = attribute
        #: how to repair it, when there is a known fix (for ``bpm lint``)
        self.fix = fix
        where = [f"file {file}"] if file else []
        if element_id:
            where.append(f"element '{element_id}'")
        if tag:
            where.append(f"<{tag}>")
        if attribute:
            where.append(f"attribute {attribute}")
        if line:
            where.append(f"line {line}")
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full, code=code)
        self.detail = message

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "elementId": self.element_id,
            "tag": self.tag,
            "line": self.line,
            "attribute": self.attribute,
            "fix": self.fix,
            "code": self.code,
            "message": self.message,
        }


class UnsupportedElement(InvalidDefinition):
    code = "UNSUPPORTED_ELEMENT"


class BackendUnavailable(BpmError):
    code = "BACKEND_UNAVAILABLE"
    status = 503
