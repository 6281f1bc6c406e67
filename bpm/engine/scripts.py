"""Script tasks run by the safe expression evaluator, never by a real interpreter.

A script is a sequence of statements, one per line or separated by ``;``:
``name = expression`` (or ``+=``, ``-=``, ``*=``, ``/=``) assigns a process variable, anything else is an
expression whose value becomes the result (``camunda:resultVariable``).
Languages the evaluator speaks (none given, ``feel``, ``juel``, ``python``,
``spiff``...) run; Groovy, JavaScript and every other language are refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from bpm.errors import ExpressionError, Unprocessable
from bpm.expressions import WorkMeter, compile_expression, compile_template

RUNNABLE_LANGUAGES = frozenset({"", "feel", "juel", "el", "python", "spiff", "spiffworkflow", "expression", "bpmr"})
_ASSIGNMENT = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*([-+*/]?)=(?!=)(.*)", re.DOTALL)
MAX_STATEMENTS = 200


class ScriptNotSupported(Unprocessable):
    """A script in a language the engine will not run (Groovy, JavaScript ...)."""

    code = "UNSUPPORTED_SCRIPT"


def is_runnable_language(language: str | None) -> bool:
    return (language or "").strip().lower() in RUNNABLE_LANGUAGES


def _split_statements(script: str) -> list[str]:
    statements: list[str] = []
    current: list[str] = []
    quote = ""
    for char in script:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in ";\n":
            statements.append("".join(current))
            current = []
            continue
        current.append(char)
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip() and not s.strip().startswith("#")]


@functools.lru_cache(maxsize=1024)
def compile_script(script: str, language: str | None) -> tuple[tuple[str | None, Any], ...]:
    """Compile each statement once: (target variable or None, expression). Raises ExpressionError."""
    if not is_runnable_language(language):
        raise ScriptNotSupported(f"script language '{language}' is not supported (scripts run on the safe evaluator)")
    if (language or "").strip().lower() in ("juel", "el") and "${" in script:
        return ((None, compile_template(script.strip())),)  # a JUEL script is one (composite) expression
    statements = _split_statements(script)
    if len(statements) > MAX_STATEMENTS:
        raise ExpressionError(f"script has more than {MAX_STATEMENTS} statements")
    compiled: list[tuple[str | None, Any]] = []
    for statement in statements:
        match = _ASSIGNMENT.fullmatch(statement)
        if match:
            target, operator, expression = match.group(1), match.group(2), match.group(3).strip()
            if operator:  # x += e  ->  x = x + (e)
                expression = f"{target} {operator} ({expression})"
            compiled.append((target, compile_expression(expression)))
        else:
            compiled.append((None, compile_expression(statement)))
    return tuple(compiled)


def run_script(script: str, language: str | None, variables: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """Run a script; return (assigned variables, value of the last expression).

    All statements share one work budget (the evaluator's ``WorkMeter``).
    """
    assigned: dict[str, Any] = {}
    result: Any = None
    meter = WorkMeter()
    for target, expression in compile_script(script, language):
        value = expression.evaluate({**variables, **assigned}, meter=meter)
        if target is None:
            result = value
        else:
            assigned[target] = value
            result = value
    return assigned, result
