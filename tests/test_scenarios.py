"""``bpm test``: the scenario files of processes/ pass, and failures say where and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from click.testing import CliRunner

from bpm.cli import cli
from bpm.scenarios import run_paths
from tests.conftest import PROCESSES, ROOT

BOOKING = PROCESSES / "booking_room.bpmn"


def _write(folder: Path, text: str, name: str = "case.yaml") -> Path:
    path = folder / name
    path.write_text(text.replace("BOOKING", str(BOOKING)), encoding="utf-8")
    return path


def test_every_example_process_has_scenarios_and_they_pass(tmp_path: Path) -> None:
    bpmn = {p.stem for p in PROCESSES.glob("*.bpmn")}
    assert bpmn == {p.stem for p in PROCESSES.glob("*.yaml")}
    junit = tmp_path / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "bpm.cli", "test", "processes", "--junit", str(junit)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    suites = ElementTree.parse(junit).getroot()
    assert {s.get("name") for s in suites} == {f"processes/{name}.yaml" for name in bpmn}
    assert sum(int(s.get("tests", 0)) for s in suites) >= len(bpmn)
    assert all(s.get("failures") == "0" for s in suites)


def test_a_failing_expectation_names_file_scenario_step_expected_and_actual(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
process: BOOKING
identities: {alice: {groups: [facilities]}}
scenarios:
  - name: wrong turn
    start: {process: booking room, user: carol, variables: {RoomObject: {capacity: 20}}}
    steps:
      - complete: {task: ReviewBooking, user: alice}
      - expect: {tasks: [ConfirmBooking]}
""",
    )
    junit = tmp_path / "out" / "junit.xml"
    result = CliRunner().invoke(cli, ["test", str(path), "--junit", str(junit)])
    assert result.exit_code == 1
    first, context = result.output.splitlines()[:2]
    assert first == (
        f"FAIL {path}: scenario 'wrong turn', step 2 (expect: {{'tasks': ['ConfirmBooking']}}): "
        "expected open tasks ['ConfirmBooking'], actual ['ManagerApproval']"
    )
    assert "open tasks ['ManagerApproval']" in context and "'RoomObject': {'capacity': 20}" in context
    assert "path ['Start', 'ReviewBooking', 'SizeGateway', 'ManagerApproval']" in context
    [case] = ElementTree.parse(junit).getroot().iter("testcase")
    assert case.get("name") == "wrong turn" and case.find("failure") is not None


def test_final_expectations_variables_and_error_codes(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
process: BOOKING
identities: {alice: {groups: [facilities]}, bob: {groups: [managers]}}
scenarios:
  - name: an unexpected error fails the step
    start: {process: booking room, user: carol, variables: {RoomObject: {capacity: 20}}}
    steps:
      - complete: {task: ReviewBooking, user: alice}
      - complete: {task: ManagerApproval, user: bob}
  - name: an expected error that does not come
    start: {process: booking room, user: carol, variables: {RoomObject: {capacity: 2}}}
    steps:
      - complete: {task: ReviewBooking, user: alice, fails: NOT_CANDIDATE}
  - name: the end state differs
    start: {process: booking room, user: carol, variables: {RoomObject: {capacity: 2}}}
    steps:
      - complete: {task: ReviewBooking, user: alice, variables: {approved: maybe}}
    expect: {ended: true, variables: {approved: true, note: x}, passed: [Booked]}
  - name: no such task
    start: {process: booking room, user: carol, variables: {RoomObject: {capacity: 2}}}
    steps:
      - claim: {task: Nope, user: alice}
""",
    )
    report = run_paths([path])
    failures = {r.outcome.scenario: (r.outcome.step, r.failure or "") for r in report.results}
    assert not report.passed
    assert failures["an unexpected error fails the step"][1].startswith("failed with EXPRESSION_ERROR")
    assert failures["an expected error that does not come"][1] == (
        "expected the error NOT_CANDIDATE, but the step succeeded"
    )
    step, failure = failures["the end state differs"]
    assert step == "expect"
    assert "expected ended: True, actual False" in failure
    assert "expected variable approved = True, actual 'maybe'" in failure
    assert "expected variable note = 'x', actual: not set" in failure
    assert "expected the path to pass ['Booked']" in failure
    assert failures["no such task"][1] == "no open task 'Nope' (open: ['ReviewBooking'])"


def test_malformed_files_fail_with_the_file_named(tmp_path: Path) -> None:
    cases = {
        "no-process.yaml": "scenarios: [{name: x}]",
        "bad-step.yaml": "process: BOOKING\nscenarios: [{name: x, steps: [{dance: {}}]}]",
        "bad-key.yaml": "process: BOOKING\nscenarios: [{name: x, steps: [{claim: {task: a, who: b}}]}]",
        "missing-bpmn.yaml": "process: nowhere.bpmn\nscenarios: [{name: x}]",
        "not-yaml.yaml": "process: [unclosed",
    }
    for name, text in cases.items():
        _write(tmp_path, text, name)
    report = run_paths([tmp_path])
    assert len(report.results) == len(cases) and not any(r.failure is None for r in report.results)
    messages = {Path(r.outcome.file).name: r.failure or "" for r in report.results}
    assert "'process' must name a BPMN file" in messages["no-process.yaml"]
    assert "unknown step 'dance'" in messages["bad-step.yaml"]
    assert "does not take ['who']" in messages["bad-key.yaml"]
    assert "nowhere.bpmn" in messages["missing-bpmn.yaml"]
    assert "cannot read" in messages["not-yaml.yaml"]
