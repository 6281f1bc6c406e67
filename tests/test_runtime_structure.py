"""The structure behind the use cases: collaborators, not a mixin; no import cycle back to the runtime."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

from bpm.planner import Planner
from bpm.runtime import Runtime

BPM = Path(__file__).resolve().parent.parent / "bpm"
COLLABORATORS = ["planner.py", "committer.py", "timer_cases.py", "message_cases.py", "external_cases.py", "views.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_collaborator_imports_the_runtime_not_even_for_type_checking() -> None:
    for name in COLLABORATORS:
        assert "bpm.runtime" not in imported_modules(BPM / name), name


def test_runtime_is_no_mixin_host_and_the_planner_gets_only_what_it_reads() -> None:
    assert Runtime.__bases__ == (object,)
    assert list(inspect.signature(Planner).parameters) == [
        "cache",
        "engine",
        "load_instance",
        "now_ms",
        "strict_errors",
    ]
    assert importlib.util.find_spec("bpm.events") is None  # named for what it holds: *_cases, committer
