"""``bpm test``: YAML scenarios that test a BPMN model without a server.

Each scenario runs in-process on its own memory backend with a clock that only
``advance`` moves; a failure names the file, the scenario and the step, with what
was expected and what the instance shows (open tasks, variables, path). See
:mod:`bpm.scenarios.model` for the format and :mod:`bpm.scenarios.runner` for the steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from bpm.errors import InvalidDefinition
from bpm.scenarios.model import ScenarioFile, ScenarioFileError, load, scenario_files
from bpm.scenarios.runner import Outcome, run_scenario


@dataclass(frozen=True, slots=True)
class Result:
    """One scenario's outcome, as ``bpm test`` prints it."""

    outcome: Outcome

    @property
    def failure(self) -> str | None:
        return self.outcome.failure

    def describe(self) -> str:
        o = self.outcome
        if o.failure is None:
            return f"PASS {o.file}: {o.scenario}"
        context = f"\n    now: {o.context}" if o.context else ""
        return f"FAIL {o.file}: scenario '{o.scenario}', {o.step}: {o.failure}{context}"


@dataclass(slots=True)
class Report:
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.failure is None for r in self.results)

    def summary(self) -> str:
        failed = sum(1 for r in self.results if r.failure is not None)
        files = len({r.outcome.file for r in self.results})
        return f"{len(self.results) - failed} passed, {failed} failed ({len(self.results)} scenarios in {files} files)"


def _definitions(suite: ScenarioFile) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in suite.processes]


def run_file(path: Path) -> list[Result]:
    """Every scenario of one file; a file that cannot be loaded or deployed fails as a whole."""
    try:
        suite = load(path)
        definitions = _definitions(suite)
    except ScenarioFileError as exc:
        return [Result(Outcome(str(path), "(file)", str(exc), "load"))]
    except OSError as exc:
        return [Result(Outcome(str(path), "(file)", f"cannot read a process file: {exc}", "load"))]
    results = []
    for scenario in suite.scenarios:
        try:
            results.append(Result(run_scenario(suite, scenario, definitions)))
        except InvalidDefinition as exc:
            results.append(Result(Outcome(str(path), scenario.name, f"the process does not deploy: {exc}", "deploy")))
    return results


def run_paths(paths: Iterable[Path]) -> Report:
    """Every scenario file under ``paths``; a path with none is a failure."""
    report = Report()
    for path in paths:
        files = list(scenario_files([path]))
        if not files:
            report.results.append(Result(Outcome(str(path), "(none)", "no scenario files (*.yaml) here", "load")))
        for file in files:
            report.results.extend(run_file(file))
    return report


def write_junit(report: Report, target: Path) -> None:
    """JUnit XML: one testsuite per file, one testcase per scenario."""
    suites = ElementTree.Element("testsuites")
    by_file: dict[str, list[Result]] = {}
    for result in report.results:
        by_file.setdefault(result.outcome.file, []).append(result)
    for file, results in by_file.items():
        failures = sum(1 for r in results if r.failure is not None)
        suite = ElementTree.SubElement(
            suites, "testsuite", name=file, tests=str(len(results)), failures=str(failures), errors="0"
        )
        for result in results:
            case = ElementTree.SubElement(suite, "testcase", classname=Path(file).stem, name=result.outcome.scenario)
            if result.failure is not None:
                failure = ElementTree.SubElement(case, "failure", message=f"{result.outcome.step}: {result.failure}")
                failure.text = result.describe()
    target.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(suites).write(target, encoding="utf-8", xml_declaration=True)


__all__ = ["Report", "Result", "run_file", "run_paths", "write_junit"]
