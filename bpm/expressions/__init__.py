"""The one safe expression evaluator for conditions, scripts and attribute templates.

Process models carry expressions in several dialects; all are parsed by one
union grammar into an immutable AST and run by a small tree-walking evaluator:

- JUEL (Camunda, Flowable, Activiti): ``${approved}``, ``#{a eq 'x'}``,
  ``${order.items[0].price > 10 && !done}``, ``${empty list}``;
- FEEL (Camunda 8): ``= x > 5 and y = "a"``, ``= not(done)``; with a FEEL
  ``language`` hint, adjacent names join into one (``Vacation Approval``);
  quantified and ``for`` expressions: ``= some r in risks satisfies r = "red"``,
  ``= every x in xs, y in x satisfies y > 0``, ``= for x in xs return x * 2``
  (every dialect reads these; see :class:`_Loop`);
- Python-like (SpiffWorkflow): ``answer == 'Yes'``, ``not val``,
  ``a if c else b``, ``x in ['a', 'b']``.

Nothing here runs Python code: no ``eval``/``exec``/``compile`` and no ``ast``.
Values are JSON-like (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``,
``None``); no attribute of a Python object is ever read; only the functions of
:data:`FUNCTIONS` and the methods of :data:`METHODS` can be called. Sizes, depth,
numbers and work are bounded (``MAX_*`` below), and every failure - syntax,
missing name, bad type, bound exceeded - raises
:class:`bpm.errors.ExpressionError` naming the culprit and the expression.

Interface:

- ``compile_expression(text, language=None) -> Expression`` for conditions and
  script expressions (syntax errors surface here, at deployment);
- ``compile_template(text) -> Expression`` for attribute values (assignee,
  candidate users, due date, priority): literal text with ``${...}`` parts;
- ``Expression.evaluate(variables, meter=None)`` and ``Expression.evaluate_condition(variables, meter=None)``;
- ``WorkMeter(budget)`` counts an evaluation's work (``.used``), ``record_work()`` collects it;
- ``use_clock(epoch_ms)`` fixes what ``now()``, ``today()`` and ``dateTime()`` see.
- :mod:`.beans`: ``use_beans(registry)`` lets ``${bean.method(x)}`` call the public methods
  of the deployer's registered objects (``BPM_BEANS``); ``Expression.unknown_calls()``
  lists the calls no evaluation could run, for deploy-time checks.

The vendors' functions (Camunda's ``dateTime()``, Flowable's ``variables:get(x)``,
FEEL's ``date and time("...")`` ...) are listed in the README, "Expression limits".

Modules, by responsibility: :mod:`.limits` (bounds and budget), :mod:`.values`
(faults, values, lookups), :mod:`.costs` (work accounting), :mod:`.operators`,
:mod:`.builtins` (the whitelists), :mod:`.temporal` (dates and durations),
:mod:`.vendor` (Flowable's variable functions), :mod:`.faults`, :mod:`.syntax`
(tree), :mod:`.scanner`, :mod:`.parser` (grammar and templates),
:mod:`.evaluator` and :mod:`.compiled` (:class:`Expression`, ``compile_*``).
"""

from __future__ import annotations

from bpm.errors import ExpressionError
from bpm.expressions.builtins import FUNCTIONS, METHODS
from bpm.expressions.compiled import Expression, compile_expression, compile_template
from bpm.expressions.costs import WorkLog, WorkMeter, record_work
from bpm.expressions.limits import (
    CHARS_PER_UNIT,
    LOOP_ITEM_WORK,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_INT,
    MAX_NODES,
    MAX_SEQUENCE,
    MAX_SOURCE_LENGTH,
    MAX_STEPS,
    MAX_VALUE_DEPTH,
    MAX_WORK,
    NODE_WORK,
)
from bpm.expressions.temporal import use_clock

__all__ = [
    "CHARS_PER_UNIT",
    "FUNCTIONS",
    "LOOP_ITEM_WORK",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT",
    "MAX_NODES",
    "MAX_SEQUENCE",
    "MAX_SOURCE_LENGTH",
    "MAX_STEPS",
    "MAX_VALUE_DEPTH",
    "MAX_WORK",
    "METHODS",
    "NODE_WORK",
    "Expression",
    "ExpressionError",
    "WorkLog",
    "WorkMeter",
    "compile_expression",
    "compile_template",
    "record_work",
    "use_clock",
]
