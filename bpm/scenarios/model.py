"""Scenario files (``*.yaml``): loading and checking their shape (the format is in API.md, "Operating it")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: step kind -> the keys it accepts (``fails``: the step must fail with that error code)
STEP_KEYS: dict[str, frozenset[str]] = {
    "claim": frozenset({"task", "user", "fails"}),
    "unclaim": frozenset({"task", "user", "fails"}),
    "complete": frozenset({"task", "user", "variables", "fails"}),
    "expect": frozenset({"tasks", "ended", "passed", "variables"}),
    "advance": frozenset(),
    "message": frozenset({"name", "variables", "businessKey", "correlationKeys", "user", "fails"}),
    "signal": frozenset({"name", "variables", "user", "fails"}),
    "external": frozenset({"topic", "variables", "error", "message", "fails"}),
}
START_KEYS = frozenset({"process", "user", "variables", "businessKey"})
SCENARIO_SUFFIXES = (".yaml", ".yml")


class ScenarioFileError(Exception):
    """A scenario file that cannot be read or has the wrong shape (names the file and the place)."""


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    kind: str
    args: Any

    def label(self) -> str:
        shown = self.args if not isinstance(self.args, Mapping) else {k: v for k, v in self.args.items()}
        return f"step {self.number} ({self.kind}: {shown})"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: Mapping[str, Any] | None
    steps: tuple[Step, ...]
    expect: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ScenarioFile:
    path: Path
    processes: tuple[Path, ...]
    identities: Mapping[str, Mapping[str, list[str]]]
    scenarios: tuple[Scenario, ...] = field(default_factory=tuple)


def scenario_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and the scenario files in the folders named (recursively, sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SCENARIO_SUFFIXES)
        else:
            yield path


def load(path: Path) -> ScenarioFile:
    """Read and check one scenario file. Raises ScenarioFileError."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(document, dict):
        raise ScenarioFileError(f"{path}: a scenario file is a mapping with 'process' and 'scenarios'")
    unknown = set(document) - {"process", "identities", "scenarios"}
    if unknown:
        raise ScenarioFileError(f"{path}: unknown keys {sorted(unknown)}")
    processes = document.get("process")
    names = [processes] if isinstance(processes, str) else processes
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ScenarioFileError(f"{path}: 'process' must name a BPMN file (or a list of them), relative to this file")
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, list) or not scenarios:
        raise ScenarioFileError(f"{path}: 'scenarios' must be a non-empty list")
    return ScenarioFile(
        path=path,
        processes=tuple((path.parent / name).resolve() for name in names),
        identities=_identities(path, document.get("identities") or {}),
        scenarios=tuple(_scenario(path, i, s) for i, s in enumerate(scenarios, 1)),
    )


def _identities(path: Path, raw: Any) -> dict[str, dict[str, list[str]]]:
    if not isinstance(raw, dict):
        raise ScenarioFileError(f"{path}: 'identities' maps user -> {{groups: [...], roles: [...]}}")
    identities = {}
    for user, entry in raw.items():
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"groups", "roles"}:
            raise ScenarioFileError(f"{path}: identity '{user}' takes only 'groups' and 'roles'")
        identities[str(user)] = {k: [str(v) for v in entry.get(k) or []] for k in ("groups", "roles")}
    return identities


def _scenario(path: Path, index: int, raw: Any) -> Scenario:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ScenarioFileError(f"{path}: scenario {index} needs a 'name'")
    where = f"{path}: scenario '{raw['name']}'"
    unknown = set(raw) - {"name", "start", "steps", "expect"}
    if unknown:
        raise ScenarioFileError(f"{where}: unknown keys {sorted(unknown)}")
    start = raw.get("start")
    if start is not None and (not isinstance(start, dict) or set(start) - START_KEYS):
        raise ScenarioFileError(f"{where}: 'start' takes {sorted(START_KEYS)}")
    steps = raw.get("steps") or []
    if not isinstance(steps, list):
        raise ScenarioFileError(f"{where}: 'steps' must be a list")
    expect = raw.get("expect")
    if expect is not None:
        _check_keys(where, "expect", expect)
    return Scenario(raw["name"], start, tuple(_step(where, n, s) for n, s in enumerate(steps, 1)), expect)


def _step(where: str, number: int, raw: Any) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScenarioFileError(f"{where}: step {number} must be one of {sorted(STEP_KEYS)} with its arguments")
    [(kind, args)] = raw.items()
    if kind not in STEP_KEYS:
        raise ScenarioFileError(f"{where}: step {number}: unknown step '{kind}' (known: {sorted(STEP_KEYS)})")
    if kind == "advance":
        if not isinstance(args, str):
            raise ScenarioFileError(f"{where}: step {number}: 'advance' takes an ISO 8601 duration such as PT2H")
    else:
        _check_keys(f"{where}: step {number}", kind, args)
    return Step(number, kind, args)


def _check_keys(where: str, kind: str, args: Any) -> None:
    if not isinstance(args, dict):
        raise ScenarioFileError(f"{where}: '{kind}' takes a mapping of {sorted(STEP_KEYS[kind])}")
    unknown = set(args) - STEP_KEYS[kind]
    if unknown:
        raise ScenarioFileError(
            f"{where}: '{kind}' does not take {sorted(unknown)} (it takes {sorted(STEP_KEYS[kind])})"
        )
