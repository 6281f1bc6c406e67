"""The evaluator's internal faults and the ExpressionError they become at its boundary."""

from __future__ import annotations

from bpm.errors import ExpressionError
from bpm.expressions.limits import _CLIP


class _Fault(Exception):
    """A runtime failure; the evaluation boundary adds the source and re-raises it."""


class _Missing(_Fault):
    """A variable, property or index that is not there (``empty`` treats it as null)."""


def _clip(source: str) -> str:
    return source if len(source) <= _CLIP else source[: _CLIP - 3] + "..."


def _error(message: str, source: str) -> ExpressionError:
    return ExpressionError(f"{message} in '{_clip(source)}'")
