"""Input/output mappings and listeners (issue 11, part 4), on every backend; and the warnings
that list what the engine does not honour (deployment response and deploy report)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from backends.base import Backend
from bpm.errors import ExpressionError
from bpm.runtime import Runtime
from tests.api_support import Api, make_app, ok
from tests.conftest import DATA

VENDOR = DATA / "vendor"


@pytest.fixture
def runtime(backend: Backend) -> Runtime:
    rt = Runtime(backend, VENDOR)
    report = rt.deploy_directory()
    assert not report.errors, report.errors
    return rt


def variables(runtime: Runtime, instance_id: str) -> dict[str, Any]:
    return dict(runtime.instance(instance_id).state["vars"])


def test_a_camunda_8_loop_counts_with_zeebe_outputs_and_runs_to_its_end(runtime: Runtime) -> None:
    seen: list[Any] = []

    def fetch_page(given: Mapping[str, Any]) -> dict[str, Any]:
        seen.append((given.get("loops"), given.get("page")))
        return {"fetched": True}

    runtime.register_handler("fetch-page", fetch_page)
    instance_id = runtime.start(unique_id="zeebe_loop_counter")
    instance = runtime.instance(instance_id)
    assert instance.ended
    assert [loops for loops, _ in seen] == [0, 1, 2]
    final = variables(runtime, instance_id)
    assert final["loops"] == 3 and final["result"] == {"lastPage": 3} and final["fetched"] is True
    assert "page" not in final  # an input is local to its element


def test_camunda_input_output_mappings_and_listeners(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="camunda_io_listeners", variables={"amount": 60}, user="carol")
    [task] = runtime.instance_tasks(instance_id)
    assert task.assignee == "carol"  # the assignee reads the input mapping
    local = runtime.task_variables(task.id)
    assert local["limit"] == "100" and local["checks"] == ["budget", "carol"]
    assert local["meta"] == {"by": "carol", "tags": ["a"], "none": None}
    before = variables(runtime, instance_id)
    assert before["startedBy"] == "carol" and before["took"] == "f1"  # start and take listeners
    assert before["created"] is True and before["assignedTo"] == "carol"  # create and assignment listeners
    assert "limit" not in before and "ended" not in before  # inputs are local; process listeners not run
    runtime.complete(task.id, "carol", {"amount": 70})
    after = variables(runtime, instance_id)
    assert after["total"] == 140 and after["completedAmount"] == 70 and after["reviewed"] is True
    assert [t.task_definition_key for t in runtime.instance_tasks(instance_id)] == ["approve"]  # 140 > 100


def test_a_failing_mapping_stops_the_step_and_changes_nothing(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="camunda_io_listeners", variables={"amount": 60}, user="carol")
    [task] = runtime.instance_tasks(instance_id)
    with pytest.raises(ExpressionError, match="output mapping to 'total'"):
        runtime.complete(task.id, "carol", {"amount": None})
    assert [t.id for t in runtime.instance_tasks(instance_id)] == [task.id]
    assert variables(runtime, instance_id)["amount"] == 60


def test_what_is_not_honoured_is_a_warning_in_the_deploy_report(runtime: Runtime) -> None:
    report = runtime.deploy_directory()
    warnings = [w for w in report.warnings if w["file"] == "camunda_io_listeners.bpmn"]
    by_attribute = {(w["attribute"], w["elementId"]): w for w in warnings}
    assert set(by_attribute) == {
        ("camunda:historyTimeToLive", "camunda_io_listeners"),
        ("camunda:executionListener", "camunda_io_listeners"),  # process level
        ("camunda:taskListener", "review"),  # class=
        ("camunda:executionListener", "end"),  # delegateExpression=
    }
    java = by_attribute["camunda:taskListener", "review"]
    assert "org.example.AuditListener" in str(java["message"]) and java["instead"] == "the listener is skipped"
    assert java["line"] and java["fix"]
    assert all(w["line"] and w["message"] and w["instead"] for w in warnings)


def test_warnings_are_listed_in_the_deployment_response(backend: Backend) -> None:
    api = Api(make_app(backend, VENDOR).test_client())
    data = (VENDOR / "camunda_io_listeners.bpmn").read_bytes().replace(b"Approve", b"Approve it")
    [definition] = ok(api.post("/deployments", data=data, content_type="application/xml",
                               query_string={"fileName": "io.bpmn"}))  # fmt: skip
    assert definition["definitionId"] == "camunda_io_listeners:2"
    attributes = sorted(w["attribute"] for w in definition["warnings"])
    assert attributes == ["camunda:executionListener", "camunda:executionListener", "camunda:historyTimeToLive",
                          "camunda:taskListener"]  # fmt: skip
    assert all(w["file"] == "io.bpmn" for w in definition["warnings"])
    report = ok(api.post("/refreshCache"))
    assert any(w["file"] == "camunda_io_listeners.bpmn" for w in report["warnings"])
    [clean] = ok(api.post("/deployments", data=(VENDOR / "cron_boundary.bpmn").read_bytes(),
                          content_type="application/xml"))  # fmt: skip
    assert clean["warnings"] == []


def test_every_unhonoured_extension_is_a_warning_and_the_model_still_runs(runtime: Runtime) -> None:
    report = runtime.deploy_directory()
    warnings = [w for w in report.warnings if w["file"] == "not_honoured.bpmn"]
    assert sorted((w["elementId"], w["attribute"]) for w in warnings) == [
        ("charge", "camunda:class"),
        ("charge", "camunda:field"),
        ("charge", "camunda:properties"),
        ("charge", "output mapping"),  # string() is not a function of the evaluator: skipped
        ("charge", "zeebe:taskHeaders"),
        ("start", "camunda:asyncBefore"),
    ]
    java = next(w for w in warnings if w["attribute"] == "camunda:class")
    assert "external task" in str(java["instead"])
    runtime.register_handler("charge", lambda given: {"charged": True})
    instance_id = runtime.start(unique_id="not_honoured")
    assert runtime.instance(instance_id).ended
    final = variables(runtime, instance_id)
    # as Zeebe: a path through a missing variable, or a missing variable, maps to null
    assert final["receiptNumber"] is None and final["nothing"] is None and "stamp" not in final
