"""``bpm lint``: deploy-time checks of BPMN files without a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bpm.cli import cli
from bpm.lint import lint_paths
from tests.conftest import DATA, PROCESSES, ROOT

REVIEW = (PROCESSES / "parallel_review.bpmn").read_text(encoding="utf-8")
ORDER = (PROCESSES / "order.bpmn").read_text(encoding="utf-8")


def _lint(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["lint", *args])
    return result.exit_code, result.output


def test_the_example_processes_all_deploy() -> None:
    code, output = _lint(str(PROCESSES))
    assert code == 0, output
    assert output.splitlines()[-1].startswith("6 files: 6 deploy, 0 errors")


def test_a_broken_reference_is_an_error_with_file_line_element_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpmn"
    bad.write_text(REVIEW.replace('targetRef="Publish"', 'targetRef="Nowhere"'), encoding="utf-8")
    code, output = _lint(str(bad))
    assert code == 1
    first, fix = output.splitlines()[:2]
    assert first == f"{bad}:17: Flow_toPublish: targetRef 'Nowhere' is not a flow node of this process"
    assert fix.strip().startswith("fix: ")


def test_a_message_event_without_message_ref_says_to_name_it(tmp_path: Path) -> None:
    bad = tmp_path / "order.bpmn"
    bad.write_text(
        ORDER.replace('<bpmn:messageEventDefinition messageRef="Message_paymentReceived" />',
                      "<bpmn:messageEventDefinition />"),
        encoding="utf-8",
    )  # fmt: skip
    code, output = _lint(str(bad))
    assert code == 1
    assert f"{bad}:19: PaymentReceived: a catching message event needs a messageRef" in output
    assert "fix: name the message: messageRef=" in output


def test_warnings_do_not_fail_and_json_format_carries_everything(tmp_path: Path) -> None:
    (tmp_path / "groovy.bpmn").write_bytes((DATA / "events" / "script_task_groovy.bpmn").read_bytes())
    (tmp_path / "not-bpmn.txt").write_text("ignored: folders are searched for .bpmn files", encoding="utf-8")
    code, output = _lint("--format", "json", str(tmp_path))
    assert code == 0, output
    document = json.loads(output)
    assert document["ok"] is True and document["errors"] == 0 and document["warnings"] >= 1
    [entry] = document["files"]
    finding = next(f for f in entry["findings"] if f["code"] == "UNSUPPORTED_SCRIPT")
    assert finding["severity"] == "warning" and finding["elementId"] and finding["line"] and finding["fix"]


def test_an_exclusive_gateway_with_only_conditions_gets_the_default_flow_warning() -> None:
    [result] = lint_paths([PROCESSES / "booking_room.bpmn"])
    [finding] = [f for f in result.findings if f.code == "NO_DEFAULT_FLOW"]
    assert finding.element_id == "ApprovedGateway" and finding.fix and "default flow" in finding.fix


def test_not_xml_and_an_empty_folder_are_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.bpmn").write_text("not xml at all", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    results = lint_paths([tmp_path / "junk.bpmn", empty])
    assert [r.ok for r in results] == [False, False]
    assert results[1].findings[0].message == "no BPMN files here"


def test_the_installed_entry_point_exits_1_on_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpmn"
    bad.write_text(REVIEW.replace('targetRef="Publish"', 'targetRef="Nowhere"'), encoding="utf-8")
    good = subprocess.run([sys.executable, "-m", "bpm.cli", "lint", "processes"], cwd=ROOT, capture_output=True)
    failed = subprocess.run([sys.executable, "-m", "bpm.cli", "lint", str(bad)], cwd=ROOT, capture_output=True)
    assert (good.returncode, failed.returncode) == (0, 1)


def test_the_parsers_vendor_warnings_are_listed_with_what_happens_instead(tmp_path: Path) -> None:
    form = (
        '<bpmn:extensionElements><camunda:formData><camunda:formField id="code" type="string">'
        '<camunda:validation><camunda:constraint name="pattern" config="[0-9]+" /></camunda:validation>'
        "</camunda:formField></camunda:formData></bpmn:extensionElements>"
    )
    text = ORDER.replace(
        '<bpmn:userTask id="ShipOrder" name="Ship order" camunda:candidateGroups="warehouse" />',
        f'<bpmn:userTask id="ShipOrder" name="Ship order" camunda:candidateGroups="warehouse">{form}</bpmn:userTask>',
    )
    path = tmp_path / "order.bpmn"
    path.write_text(text, encoding="utf-8")
    code, output = _lint(str(path))
    assert code == 0, output
    assert (
        f"{path}:22: ShipOrder: warning: form field 'code': validation constraint 'pattern' is not checked; " in output
    )
    assert "the value is accepted without this check" in output


def test_the_parsers_own_fix_is_shown(tmp_path: Path) -> None:
    bad = tmp_path / "cron.bpmn"
    bad.write_bytes((DATA / "vendor" / "bad" / "bad_cron.bpmn").read_bytes())
    [result] = lint_paths([bad])
    [finding] = result.findings
    assert finding.element_id == "everyHour" and finding.attribute == "timeCycle"
    assert finding.fix and "Quartz cron" in finding.fix
