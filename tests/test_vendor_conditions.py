"""Conditional events with Camunda 7's semantics (issue 11, part 7), in all four positions.

A variable change re-evaluates the waiting conditions of that instance (complete with
variables, a message's or a worker's variables, a script); ``camunda:variableName`` and
``camunda:variableEvents`` filter which changes do; a condition true on arrival at an
intermediate conditional event passes at once; conditional start events start by
``POST …/condition``. Every case runs on each backend where state is involved.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from bpm.errors import InvalidDefinition, ProcessNotFound
from bpm.runtime import Runtime
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import DATA

VENDOR = DATA / "vendor"


def runtime_for(backend: Backend, *files: str) -> Runtime:
    runtime = Runtime(backend)
    for name in files:
        runtime.deploy((VENDOR / name).read_bytes(), file=name)
    return runtime


def open_tasks(runtime: Runtime, instance_id: str) -> list[str]:
    return sorted(t.task_definition_key for t in runtime.instance_tasks(instance_id) if t.active)


def task(runtime: Runtime, instance_id: str, key: str) -> str:
    [found] = [t.id for t in runtime.instance_tasks(instance_id) if t.active and t.task_definition_key == key]
    return found


def passed(runtime: Runtime, instance_id: str) -> list[str]:
    return [e["elementId"] for e in runtime.history(instance_id) if e["type"] == "element.entered"]


def conditional_subs(runtime: Runtime, instance_id: str) -> dict[str, Any]:
    subs = runtime.instance(instance_id).state["subs"]
    return {sub_id: sub for sub_id, sub in subs.items() if sub["kind"] == "conditional"}


# --------------------------------------------------------------------------- intermediate catch


def test_an_intermediate_condition_waits_until_a_workers_variables_make_it_true(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_catch.bpmn")
    instance_id = runtime.start(unique_id="conditional_catch")
    runtime.complete(task(runtime, instance_id, "prepare"), "ann")
    assert open_tasks(runtime, instance_id) == []
    assert [s["el"] for s in conditional_subs(runtime, instance_id).values()] == ["waitProcessor"]
    [(external, _)] = runtime.fetch_and_lock("w1", {"probe": 60_000})
    runtime.complete_external(external.id, "w1", {"processorAvailable": False})
    assert open_tasks(runtime, instance_id) == []  # changed, but the condition is false
    runtime.correlate_message("processorStatus", instance_id=instance_id, variables={"processorAvailable": True})
    assert open_tasks(runtime, instance_id) == ["process"]
    assert conditional_subs(runtime, instance_id) == {}
    assert "waitProcessor" in passed(runtime, instance_id)


def test_a_workers_variables_trigger_the_condition(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_catch.bpmn")
    instance_id = runtime.start(unique_id="conditional_catch")
    runtime.complete(task(runtime, instance_id, "prepare"), "ann")
    [(external, _)] = runtime.fetch_and_lock("w1", {"probe": 60_000})
    runtime.complete_external(external.id, "w1", {"processorAvailable": True})
    assert open_tasks(runtime, instance_id) == ["process"]


def test_a_condition_true_on_arrival_passes_at_once(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_catch.bpmn")
    instance_id = runtime.start(unique_id="conditional_catch")
    runtime.complete(task(runtime, instance_id, "prepare"), "ann", {"processorAvailable": True})
    assert open_tasks(runtime, instance_id) == ["process"]
    assert conditional_subs(runtime, instance_id) == {}


def test_variable_name_filters_the_changes_that_re_evaluate(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_catch.bpmn")
    instance_id = runtime.start(unique_id="conditional_catch")
    runtime.complete(task(runtime, instance_id, "prepare"), "ann", {"processorAvailable": False})
    [(external, _)] = runtime.fetch_and_lock("w1", {"probe": 60_000})
    runtime.complete_external(external.id, "w1", {"override": True})  # true now, but not a change it watches
    assert open_tasks(runtime, instance_id) == []
    runtime.correlate_message("processorStatus", instance_id=instance_id, variables={"processorAvailable": False})
    assert open_tasks(runtime, instance_id) == ["process"]  # processorAvailable changed: re-evaluated, true


def test_after_an_event_based_gateway_the_first_of_message_and_condition_wins(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_event_gateway.bpmn")
    by_message = runtime.start(unique_id="conditional_event_gateway", variables={"reservedItems": 0})
    runtime.complete(task(runtime, by_message, "order"), "ann")
    assert len(runtime.backend.subscriptions("message", "stockArrived")) == 1
    runtime.correlate_message("stockArrived", instance_id=by_message, variables={"reservedItems": 20})
    assert open_tasks(runtime, by_message) == ["ship"]
    assert runtime.instance(by_message).state["subs"] == {}
    by_condition = runtime.start(unique_id="conditional_event_gateway", variables={"reservedItems": 0})
    runtime.complete(task(runtime, by_condition, "order"), "ann", {"reservedItems": 12})
    assert open_tasks(runtime, by_condition) == ["shipReserved"]
    assert runtime.backend.subscriptions("message", "stockArrived") == []  # made and dropped in one step


# --------------------------------------------------------------------------- boundary


def test_an_interrupting_boundary_fires_when_a_completion_changes_the_variable(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_boundary.bpmn")
    instance_id = runtime.start(unique_id="conditional_boundary")
    assert open_tasks(runtime, instance_id) == ["rate", "review"]
    runtime.complete(task(runtime, instance_id, "rate"), "bob", {"rating": 1, "applicationChanged": True})
    assert open_tasks(runtime, instance_id) == ["reviewAgain"]
    assert "changed" in passed(runtime, instance_id)
    assert conditional_subs(runtime, instance_id) == {}  # the review's boundaries went with it


def test_a_script_changing_a_variable_fires_a_boundary(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_boundary.bpmn")
    instance_id = runtime.start(unique_id="conditional_boundary")
    runtime.complete(task(runtime, instance_id, "rate"), "bob", {"rating": 4})  # the script sets score = 8
    assert open_tasks(runtime, instance_id) == ["escalate"]
    assert runtime.instance(instance_id).state["vars"]["score"] == 8


def test_a_false_condition_leaves_the_activity_waiting(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_boundary.bpmn")
    instance_id = runtime.start(unique_id="conditional_boundary")
    runtime.complete(task(runtime, instance_id, "rate"), "bob", {"rating": 1, "applicationChanged": False})
    assert open_tasks(runtime, instance_id) == ["review"]
    runtime.complete(task(runtime, instance_id, "review"), "ann")
    assert runtime.instance(instance_id).ended


def test_an_output_mapping_changing_a_variable_fires_a_boundary(backend: Backend) -> None:
    data = (
        (VENDOR / "conditional_boundary.bpmn")
        .read_bytes()
        .replace(
            b'<userTask id="rate" name="Rate" />',
            b'<userTask id="rate" name="Rate"><extensionElements><camunda:inputOutput>'
            b'<camunda:outputParameter name="applicationChanged">${rating &gt; 3}</camunda:outputParameter>'
            b"</camunda:inputOutput></extensionElements></userTask>",
        )
    )
    runtime = Runtime(backend)
    runtime.deploy(data, file="mapped.bpmn")
    instance_id = runtime.start(unique_id="conditional_boundary")
    runtime.complete(task(runtime, instance_id, "rate"), "bob", {"rating": 1})  # the script: score 2
    assert open_tasks(runtime, instance_id) == ["review"]
    other = runtime.start(unique_id="conditional_boundary")
    runtime.complete(task(runtime, other, "rate"), "bob", {"rating": 2.5})  # maps false, score 5: nothing
    assert open_tasks(runtime, other) == ["review"]
    third = runtime.start(unique_id="conditional_boundary")
    runtime.complete(task(runtime, third, "rate"), "bob", {"rating": 3.5})  # maps true (and score 7)
    assert open_tasks(runtime, third) == ["reviewAgain"]  # the first boundary in document order


def test_a_non_interrupting_boundary_fires_on_each_matching_change(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_boundary.bpmn")
    instance_id = runtime.start(unique_id="conditional_boundary")
    runtime.complete(task(runtime, instance_id, "rate"), "bob", {"rating": 1, "reminder": "monday"})
    assert open_tasks(runtime, instance_id) == ["note", "review"]
    runtime.complete(task(runtime, instance_id, "note"), "ann", {"reminder": "tuesday"})  # an update: again
    assert open_tasks(runtime, instance_id) == ["note", "review"]
    assert passed(runtime, instance_id).count("reminded") == 2
    runtime.complete(task(runtime, instance_id, "note"), "ann")  # no change: nothing fires
    assert open_tasks(runtime, instance_id) == ["review"]
    runtime.complete(task(runtime, instance_id, "review"), "ann")
    assert runtime.instance(instance_id).ended


def test_a_boundary_condition_true_when_the_activity_starts_fires_at_once(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_boundary.bpmn")
    instance_id = runtime.start(unique_id="conditional_boundary", variables={"applicationChanged": True})
    assert open_tasks(runtime, instance_id) == ["rate", "reviewAgain"]


# --------------------------------------------------------------------------- event subprocess


def test_an_interrupting_event_subprocess_starts_when_its_condition_becomes_true(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_event_subprocess.bpmn")
    instance_id = runtime.start(unique_id="conditional_event_subprocess", variables={"priority": 1})
    runtime.complete(task(runtime, instance_id, "work"), "ann")
    runtime.correlate_message("applicationUpdate", instance_id=instance_id, variables={"cancelled": False})
    assert runtime.instance(instance_id).ended  # the message passed; cancelled is false
    other = runtime.start(unique_id="conditional_event_subprocess", variables={"priority": 1})
    runtime.complete(task(runtime, other, "work"), "ann", {"cancelled": True})
    assert open_tasks(runtime, other) == ["cleanUp"]
    assert runtime.backend.subscriptions("message", "applicationUpdate") == []  # the wait was interrupted
    runtime.complete(task(runtime, other, "cleanUp"), "ann")
    assert runtime.instance(other).ended


def test_a_non_interrupting_event_subprocess_honours_variable_events(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_event_subprocess.bpmn")
    instance_id = runtime.start(unique_id="conditional_event_subprocess", variables={"priority": 9})
    assert open_tasks(runtime, instance_id) == ["notify", "work"]  # evaluated when the scope opens
    runtime.complete(task(runtime, instance_id, "notify"), "ann")
    other = runtime.start(unique_id="conditional_event_subprocess", variables={"priority": 1})
    assert open_tasks(runtime, other) == ["work"]
    runtime.complete(task(runtime, other, "work"), "ann", {"priority": 7})  # an update of priority
    assert open_tasks(runtime, other) == ["notify"]
    runtime.correlate_message("applicationUpdate", instance_id=other, variables={"priority": 8})
    assert runtime.instance(other).ended is False  # the notify task still runs
    assert open_tasks(runtime, other) == ["notify", "notify"]


def test_only_the_named_variable_re_evaluates_an_event_subprocess(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_event_subprocess.bpmn")
    instance_id = runtime.start(unique_id="conditional_event_subprocess", variables={"priority": 1})
    runtime.complete(task(runtime, instance_id, "work"), "ann", {"something": "else"})
    assert open_tasks(runtime, instance_id) == []
    assert sorted(s["el"] for s in conditional_subs(runtime, instance_id).values()) == ["cancelled", "raised"]


# --------------------------------------------------------------------------- conditional start


def test_evaluating_conditions_starts_every_process_whose_start_condition_holds(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_start.bpmn")
    assert runtime.evaluate_conditions({"temperature": 20}) == []
    [hot] = runtime.evaluate_conditions({"temperature": 35})
    assert runtime.instance(hot).process_key == "temperature_alarm"
    assert open_tasks(runtime, hot) == ["coolDown"]
    assert runtime.instance(hot).state["vars"] == {"temperature": 35}
    both = runtime.evaluate_conditions({"temperature": 45, "humidity": 10}, business_key="room-7", user="ann")
    assert sorted(runtime.instance(i).process_key for i in both) == ["humidity_alarm", "temperature_alarm"]
    assert {runtime.instance(i).business_key for i in both} == {"room-7"}


def test_variable_name_on_a_start_event_needs_that_variable(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_start.bpmn")
    [started] = runtime.evaluate_conditions({"temperature": 45})  # humidity not sent: humidity_alarm not evaluated
    assert runtime.instance(started).process_key == "temperature_alarm"


def test_a_process_key_limits_the_evaluation(backend: Backend) -> None:
    runtime = runtime_for(backend, "conditional_start.bpmn")
    [wet] = runtime.evaluate_conditions({"temperature": 45, "humidity": 90}, process_key="humidity_alarm")
    assert runtime.instance(wet).process_key == "humidity_alarm"
    with pytest.raises(ProcessNotFound):
        runtime.evaluate_conditions({"temperature": 45}, process_key="nothing_like_it")


# --------------------------------------------------------------------------- parsing


def test_a_condition_in_another_language_is_refused() -> None:
    from backends.memory import MemoryBackend

    data = (
        (VENDOR / "conditional_catch.bpmn")
        .read_bytes()
        .replace(b'<condition xsi:type="tFormalExpression">', b'<condition xsi:type="tFormalExpression" language="js">')
    )
    with pytest.raises(InvalidDefinition, match="expression language 'js' is not supported") as info:
        Runtime(MemoryBackend()).deploy(data, file="js.bpmn")
    assert (info.value.element_id, info.value.attribute) == ("waitProcessor", "condition")


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (b"<conditionalEventDefinition />", "a conditional event needs a condition"),
        (
            b'<conditionalEventDefinition camunda:variableEvents="change"><condition>${x}</condition>'
            b"</conditionalEventDefinition>",
            "variableEvents 'change' is not one of create, update, delete",
        ),
        (
            b"<conditionalEventDefinition><condition>${lookup.x()}</condition></conditionalEventDefinition>",
            "calls the bean method 'lookup.x'",
        ),
    ],
)
def test_a_bad_conditional_event_fails_the_deployment(definition: bytes, message: str) -> None:
    from backends.memory import MemoryBackend

    data = (VENDOR / "conditional_catch.bpmn").read_bytes()
    start = data.index(b"<conditionalEventDefinition")
    end = data.index(b"</conditionalEventDefinition>") + len(b"</conditionalEventDefinition>")
    with pytest.raises(InvalidDefinition, match=message) as info:
        Runtime(MemoryBackend()).deploy(data[:start] + definition + data[end:], file="bad.bpmn")
    assert info.value.element_id == "waitProcessor"


# --------------------------------------------------------------------------- over HTTP


def test_post_condition_starts_the_matching_processes(backend: Backend, tmp_path: Path) -> None:
    shutil.copy(VENDOR / "conditional_start.bpmn", tmp_path)
    api = Api(make_app(backend, tmp_path).test_client())
    assert ok(api.post("/condition", json={"variables": {"temperature": 10}})) == []
    started = ok(api.post("/condition", json={"variables": {"temperature": 45, "humidity": 90}, "businessKey": "r7"},
                          query_string={"user": "ann"}))  # fmt: skip
    assert len(started) == 2
    keys = sorted(ok(api.get(f"/instance/{i}"))["definitionId"].split(":")[0] for i in started)
    assert keys == ["humidity_alarm", "temperature_alarm"]
    [one] = ok(api.post("/condition", json={"variables": {"temperature": 45}, "processKey": "temperature_alarm"}))
    assert [t["taskDefinitionKey"] for t in api.tasks(one)] == ["coolDown"]
    fails(api.post("/condition", json={"variables": {}, "processKey": "no_such_process"}), 404, "PROCESS_NOT_FOUND")


def test_over_http_completing_with_variables_fires_a_boundary(backend: Backend, tmp_path: Path) -> None:
    shutil.copy(VENDOR / "conditional_boundary.bpmn", tmp_path)
    api = Api(make_app(backend, tmp_path).test_client())
    instance_id = api.start("conditional boundary")
    rate = api.task(instance_id, "rate")
    api.complete_ok(rate["id"], "bob", {"rating": 1, "applicationChanged": True})
    assert [t["taskDefinitionKey"] for t in api.tasks(instance_id)] == ["reviewAgain"]
