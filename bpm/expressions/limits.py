"""The evaluator's limits: sizes, depth, numbers and the work budget (``BPM_EXPRESSION_WORK_BUDGET``)."""

from __future__ import annotations

import os
from typing import Final

MAX_SOURCE_LENGTH: Final = 4096
"""Longest accepted expression or template source, in characters."""
MAX_DEPTH: Final = 64
"""Deepest accepted nesting of the syntax tree (and of the parser)."""
MAX_NODES: Final = 2000
"""Most syntax-tree nodes in one expression or template."""
MAX_INT: Final = 10**100
"""Largest integer magnitude an operation may produce."""
MAX_EXPONENT: Final = 1000
"""Largest exponent magnitude accepted by ``**``."""
MAX_SEQUENCE: Final = 100_000
"""Longest string or list an operation may build."""

JUEL: Final = "juel"
FEEL: Final = "feel"
PLAIN: Final = "plain"

_MAX_CONVERTED_TEXT: Final = 400
_MAX_ROUND_DIGITS: Final = 100
_MAX_INT_BITS_AS_TEXT: Final = 13_000
_CLIP: Final = 200


def _env_budget(name: str, default: int) -> int:
    """A positive integer limit from the environment (read once, at import), else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"environment variable {name}={raw!r} must be positive")
    return value


MAX_WORK: Final = _env_budget("BPM_EXPRESSION_WORK_BUDGET", 1_000_000)
"""Work budget of one evaluation (or one script), in work units; see :class:`WorkMeter`."""
NODE_WORK: Final = 100
"""Work units of one syntax-node visit, function call or loop binding."""
MAX_STEPS: Final = MAX_WORK // NODE_WORK
"""The most syntax-node visits and loop bindings one evaluation can make (the budget spent on nothing else)."""
CHARS_PER_UNIT: Final = 8
"""Characters of text scanned, copied or produced per work unit."""
LOOP_ITEM_WORK: Final = 4
"""Work units of one item that Python code (not a C loop) looks at: membership and min/max scans, walks."""
MAX_VALUE_DEPTH: Final = 256
"""Deepest nesting of a value the evaluator will measure, compare, convert or return."""
