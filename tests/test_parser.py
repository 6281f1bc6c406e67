"""Tests of :mod:`bpm.model.parser`: BPMN 2.0 XML -> immutable process specs.

Hand-written models live in ``tests/data/parser/``; the public models under
``/work/shared/bpmn/`` (Camunda, SpiffWorkflow, bpmn-engine, MIWG) are read in
place and never copied. Run with ``-s`` to see the corpus tally.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from bpm import expressions
from bpm.errors import ExpressionError, InvalidDefinition, UnsupportedElement
from bpm.model import parser as parser_module
from bpm.model.parser import ParsedFile, parse_bpmn
from bpm.model.spec import (
    Element,
    EndEvent,
    ExclusiveGateway,
    ParallelGateway,
    ProcessSpec,
    StartEvent,
    SubProcess,
    UserTask,
)

DATA = Path(__file__).resolve().parent / "data" / "parser"
SHARED_BPMN = Path(__file__).resolve().parents[2] / "shared" / "bpmn"
CAMUNDA = SHARED_BPMN / "camunda-bpm-platform"
DTD_MESSAGE = "DTDs and entity declarations are not allowed"
BPMN_HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">\n'
)


# --- helpers -------------------------------------------------------------------------------------


def parse_path(path: Path, **kwargs: Any) -> ParsedFile:
    return parse_bpmn(path.read_bytes(), file=path.name, **kwargs)


def only_process(path: Path) -> ProcessSpec:
    parsed = parse_path(path)
    assert len(parsed.processes) == 1, parsed
    return parsed.processes[0]


def parse_text(body: str) -> ParsedFile:
    return parse_bpmn(f"{BPMN_HEADER}{body}\n</definitions>\n".encode(), file="inline.bpmn")


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th ``needle``."""
    found = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            found += 1
            if found == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found in {path}")


def sources(items: Iterable[Any]) -> list[str]:
    return [item.source for item in items]


def camunda_file(name: str) -> Path:
    path = CAMUNDA / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def refused_quickly(data: bytes, limit: float = 1.0, **kwargs: Any) -> InvalidDefinition:
    started = time.perf_counter()
    with pytest.raises(InvalidDefinition) as info:
        parse_bpmn(data, file="hostile.bpmn", **kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < limit, f"took {elapsed:.2f}s"
    return info.value


# --- the public corpus ---------------------------------------------------------------------------


def corpus_files() -> list[Path]:
    return sorted(p for p in SHARED_BPMN.rglob("*") if p.is_file() and p.suffix in (".bpmn", ".xml"))


def test_public_corpus_deploys_or_is_rejected_precisely() -> None:
    if not SHARED_BPMN.is_dir():
        pytest.skip(f"{SHARED_BPMN} is missing")
    files = corpus_files()
    assert files
    tally: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    unexpected: list[str] = []
    for path in files:
        name = str(path.relative_to(SHARED_BPMN))
        try:
            parsed = parse_bpmn(path.read_bytes(), file=name)
        except InvalidDefinition as exc:
            assert exc.file == name
            assert exc.tag and exc.line, f"{name}: error without position: {exc}"
            tally[f"rejected {exc.code}"] += 1
            reasons[f"{exc.code}: {exc.detail}"] += 1
        except Exception as exc:  # exactly what this test looks for
            unexpected.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            if parsed.processes:
                tally["deployed"] += 1
                tally["deployed processes"] += len(parsed.processes)
            else:
                tally["only non-executable processes"] += 1
            tally["skipped processes (not executable)"] += len(parsed.skipped)
    print(f"\nBPMN corpus: {len(files)} files under {SHARED_BPMN}")
    for key, count in sorted(tally.items()):
        print(f"  {key:40} {count:4}")
    print("  rejections by reason:")
    for reason, count in reasons.most_common():
        print(f"    {count:3}  {reason}")
    assert not unexpected, "\n".join(unexpected)


# --- supported elements --------------------------------------------------------------------------


def test_every_supported_element_is_built() -> None:
    parsed = parse_path(DATA / "elements.bpmn")
    assert parsed.skipped == (("sketch", 'not executable (isExecutable="false")'),)
    (spec,) = parsed.processes
    assert (spec.key, spec.name, spec.label) == ("elements", "All elements", "All elements")
    assert spec.documentation == "Process documentation."
    assert spec.version_tag == "v7"
    assert spec.file == "elements.bpmn"
    assert spec.executable is True
    assert spec.start_ids == ("start",)
    assert list(spec.elements) == [
        "start", "task", "manual", "throw", "choice", "fork", "review", "join", "end", "kill",
    ]  # fmt: skip
    kinds = {element_id: type(element) for element_id, element in spec.elements.items()}
    assert kinds == {
        "start": StartEvent, "task": Element, "manual": Element, "throw": Element,
        "choice": ExclusiveGateway, "fork": ParallelGateway, "review": UserTask,
        "join": ParallelGateway, "end": EndEvent, "kill": EndEvent,
    }  # fmt: skip
    tags = {element_id: element.tag for element_id, element in spec.elements.items()}
    assert tags["task"] == "task"
    assert tags["manual"] == "manualTask"
    assert tags["throw"] == "intermediateThrowEvent"
    assert all(element.scope is None for element in spec.elements.values())


def test_element_fields() -> None:
    path = DATA / "elements.bpmn"
    spec = only_process(path)
    start = spec.element("start")
    assert isinstance(start, StartEvent)
    assert (start.name, start.initiator) == ("Start", "starter")
    assert start.documentation == "first\nsecond"
    assert start.line == line_of(path, '<bpmn:startEvent id="start"')
    assert spec.element("task").name == "Plain task"
    assert spec.element("manual").name == ""
    assert spec.element("manual").label == "manual"
    assert spec.element("choice").default == "otherwise"
    assert spec.element("task").default is None
    review = spec.element("review")
    assert isinstance(review, UserTask)
    assert review.assignee is not None and review.assignee.source == "kermit"
    assert review.form_key == "embedded:review.html"
    end, kill = spec.element("end"), spec.element("kill")
    assert isinstance(end, EndEvent) and isinstance(kill, EndEvent)
    assert (end.terminate, kill.terminate) == (False, True)


def test_incoming_and_outgoing_come_from_the_flows_in_document_order() -> None:
    spec = only_process(DATA / "elements.bpmn")
    assert spec.element("start").incoming == ()
    assert spec.element("start").outgoing == ("toTask", "toKill")
    assert spec.element("choice").outgoing == ("big", "feel", "blank", "otherwise")
    assert spec.element("fork").incoming == ("big", "feel", "blank", "otherwise")
    assert spec.element("fork").outgoing == ("left", "right")
    assert spec.element("join").incoming == ("right", "fromReview")
    assert spec.element("end").outgoing == ()
    assert list(spec.flows) == [
        "toTask", "toManual", "toThrow", "toChoice", "big", "feel", "blank", "otherwise",
        "left", "right", "fromReview", "toEnd", "toKill",
    ]  # fmt: skip
    flow = spec.flow("toTask")
    assert (flow.source, flow.target, flow.name) == ("start", "task", "go")
    assert flow.line == line_of(DATA / "elements.bpmn", 'id="toTask"')


def test_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None]] = []

    def recording(text: str, language: str | None = None) -> Any:
        calls.append((text, language))
        return expressions.compile_expression(text, language)

    monkeypatch.setattr(parser_module, "compile_expression", recording)
    spec = only_process(DATA / "elements.bpmn")
    big, feel = spec.flow("big").condition, spec.flow("feel").condition
    assert big is not None and big.source == "${amount > 100}"
    assert feel is not None and feel.source == "= amount = 0"
    assert spec.flow("blank").condition is None  # whitespace only = no condition
    assert spec.flow("otherwise").condition is None  # a default flow's condition is ignored
    assert spec.flow("left").condition is None  # so is one leaving a parallel gateway
    assert spec.flow("toTask").condition is None
    # the ignored conditions are never even compiled
    assert calls == [("${amount > 100}", None), ("= amount = 0", "feel")]


def test_specs_are_read_only() -> None:
    spec = only_process(DATA / "elements.bpmn")
    with pytest.raises(TypeError):
        spec.elements["x"] = spec.element("task")  # type: ignore[index]
    with pytest.raises(TypeError):
        spec.flows["x"] = spec.flow("toTask")  # type: ignore[index]
    assert isinstance(spec.element("start").outgoing, tuple)


def test_missing_is_executable_counts_as_executable() -> None:
    spec = only_process(DATA / "vendors.bpmn")
    assert spec.key == "vendors"
    assert spec.version_tag is None
    assert spec.name == ""


def test_a_file_with_only_non_executable_processes_deploys_nothing() -> None:
    parsed = parse_path(DATA / "all_skipped.bpmn")
    assert parsed.processes == ()
    assert parsed.skipped == (
        ("draftA", 'not executable (isExecutable="false")'),
        ("draftB", 'not executable (isExecutable="false")'),
    )


def test_sequence_flows_without_id_get_a_stable_one() -> None:
    parsed = parse_text(
        '<process id="p"><startEvent id="a" /><sequenceFlow sourceRef="a" targetRef="b" />'
        '<sequenceFlow sourceRef="a" targetRef="b" /><endEvent id="b" /></process>'
    )
    spec = parsed.processes[0]
    assert list(spec.flows) == ["a->b", "a->b#2"]
    assert spec.element("a").outgoing == ("a->b", "a->b#2")


def test_errors_on_a_flow_without_id_name_no_id() -> None:
    with pytest.raises(InvalidDefinition, match="targetRef 'nowhere'") as info:
        parse_text('<process id="p"><startEvent id="a" /><sequenceFlow sourceRef="a" targetRef="nowhere" /></process>')
    assert (info.value.element_id, info.value.tag, info.value.line) == (None, "sequenceFlow", 3)


def test_is_executable_false_is_case_insensitive() -> None:
    parsed = parse_text('<process id="p" isExecutable="FALSE" />')
    assert parsed.skipped == (("p", 'not executable (isExecutable="FALSE")'),)


def test_end_event_with_terminate_and_another_definition() -> None:
    with pytest.raises(UnsupportedElement, match="messageEventDefinition on endEvent"):
        parse_text(
            '<process id="p"><startEvent id="s" /><sequenceFlow id="f" sourceRef="s" targetRef="e" />'
            '<endEvent id="e"><terminateEventDefinition /><messageEventDefinition /></endEvent></process>'
        )


def test_several_processes_in_one_file() -> None:
    parsed = parse_text(
        '<process id="one"><startEvent id="s1" /></process>'
        '<process id="two" isExecutable="true"><startEvent id="s2" /></process>'
    )
    assert [spec.key for spec in parsed.processes] == ["one", "two"]


# --- subprocesses --------------------------------------------------------------------------------


def test_subprocesses_are_flattened_with_scope_and_start_ids() -> None:
    spec = only_process(DATA / "subprocess.bpmn")
    assert spec.start_ids == ("start", "altStart")
    assert list(spec.elements) == [
        "start", "altStart", "outer", "outerStart", "inner", "innerStart", "innerStart2",
        "innerTask", "innerEnd", "outerEnd", "end",
    ]  # fmt: skip
    scopes = {element_id: element.scope for element_id, element in spec.elements.items()}
    assert scopes == {
        "start": None, "altStart": None, "outer": None, "end": None,
        "outerStart": "outer", "inner": "outer", "outerEnd": "outer",
        "innerStart": "inner", "innerStart2": "inner", "innerTask": "inner", "innerEnd": "inner",
    }  # fmt: skip
    outer, inner = spec.element("outer"), spec.element("inner")
    assert isinstance(outer, SubProcess) and isinstance(inner, SubProcess)
    assert outer.start_ids == ("outerStart",)
    assert inner.start_ids == ("innerStart", "innerStart2")
    assert (outer.name, outer.incoming, outer.outgoing) == ("Outer", ("f1", "f1b"), ("f2",))
    assert inner.incoming == ("o1",)
    assert list(spec.flows) == ["f1", "f1b", "o1", "i1", "i2", "i3", "o2", "f2"]
    assert spec.element("innerTask").incoming == ("i1", "i2")


# --- user task assignment ------------------------------------------------------------------------


def test_camunda_flowable_activiti_and_project_attributes() -> None:
    spec = only_process(DATA / "vendors.bpmn")
    start = spec.element("start")
    assert isinstance(start, StartEvent) and start.initiator == "flowableStarter"
    camunda = spec.element("camundaTask")
    assert isinstance(camunda, UserTask)
    assert camunda.assignee is not None and camunda.assignee.source == "${initiator}"
    assert sources(camunda.candidate_users) == ["kermit", "${owners['a,b']}", "gonzo"]
    assert sources(camunda.candidate_groups) == ["management", "${team}", "#{ x == '}' ? 'a,b' : c }"]
    # only bpmr:candidateRoles counts; camunda:candidateRoles is not a Camunda attribute
    assert sources(camunda.candidate_roles) == ["approver", "${role}"]
    assert camunda.due_date is not None and camunda.due_date.source == "${due}"
    assert camunda.priority is not None and camunda.priority.source == "50"
    assert camunda.form_key == "form:camunda"

    flowable = spec.element("flowableTask")
    assert isinstance(flowable, UserTask)
    assert flowable.assignee is not None and flowable.assignee.source == "fozzie"
    assert sources(flowable.candidate_users) == ["a"]
    assert sources(flowable.candidate_groups) == ["g1", "g2"]
    assert flowable.due_date is not None and flowable.due_date.source == "PT1H"
    assert flowable.priority is not None and flowable.priority.source == "${p}"
    assert flowable.form_key == "form:flowable"

    activiti = spec.element("activitiTask")
    assert isinstance(activiti, UserTask)
    assert activiti.assignee is not None and activiti.assignee.source == "piggy"
    assert sources(activiti.candidate_users) == ["b", "c"]
    assert sources(activiti.candidate_groups) == ["h"]
    assert activiti.due_date is not None and activiti.due_date.source == "2030-01-01"
    assert activiti.form_key == "form:activiti"

    empty = spec.element("emptyTask")
    assert isinstance(empty, UserTask)
    assert (empty.assignee, empty.due_date, empty.priority, empty.form_key) == (None, None, None, None)
    assert (empty.candidate_users, empty.candidate_groups, empty.candidate_roles) == ((), (), ())


def test_human_performer_and_potential_owner() -> None:
    spec = only_process(DATA / "standard_assignment.bpmn")
    performer = spec.element("performer")
    assert isinstance(performer, UserTask)
    assert performer.assignee is not None and performer.assignee.source == "fozzie"

    plain = spec.element("plainOwners")
    assert isinstance(plain, UserTask)
    assert sources(plain.candidate_groups) == ["kermit", "gonzo"]  # plain names are groups, as in Camunda
    assert plain.candidate_users == ()

    merged = spec.element("merged")
    assert isinstance(merged, UserTask)
    assert merged.assignee is not None and merged.assignee.source == "piggy"  # attribute wins
    assert sources(merged.candidate_users) == ["kermit", "${boss}"]  # union, no repeats
    assert sources(merged.candidate_groups) == ["sales", "management"]

    by_reference = spec.element("byReference")  # resourceRef only: nothing to evaluate
    assert isinstance(by_reference, UserTask)
    assert (by_reference.assignee, by_reference.candidate_users, by_reference.candidate_groups) == (None, (), ())


@pytest.mark.parametrize(
    ("name", "assignee", "users", "groups"),
    [
        ("TaskAssignmentExtensionsTest.testAssigneeExtension", "kermit", [], []),
        ("TaskAssignmentExtensionsTest.testCandidateUsersExtension", None, ["kermit", "gonzo"], []),
        ("TaskAssignmentExtensionsTest.testCandidateGroupsExtension", None, [], ["management", "accountancy"]),
        ("TaskCandidateTest.testMixedCandidateUserAndGroup", None, ["kermit"], ["sales"]),
        ("TaskAssigneeTest.testTaskAssignee", "kermit", [], []),
        ("UserTaskTest.testTaskPropertiesNotNull", "kermit", ["fozzie", "gonzo"], ["management"]),
    ],
)
def test_camunda_assignment_models(name: str, assignee: str | None, users: list[str], groups: list[str]) -> None:
    spec = only_process(camunda_file(f"{name}.bpmn20.xml"))
    task = spec.element("theTask")
    assert isinstance(task, UserTask)
    assert (task.assignee.source if task.assignee else None) == assignee
    assert sources(task.candidate_users) == users
    assert sources(task.candidate_groups) == groups
    assert task.candidate_roles == ()


def test_camunda_documentation_and_names() -> None:
    spec = only_process(camunda_file("TaskCandidateTest.testMixedCandidateUserAndGroup.bpmn20.xml"))
    assert spec.name == "Write bi-monthly financial report"
    task = spec.element("theTask")
    assert task.name == "Write financial report"
    assert task.documentation == "Write the bi-monthly financial report for the shareholders newsletter."
    other = only_process(camunda_file("UserTaskTest.testTaskPropertiesNotNull.bpmn20.xml"))
    assert other.element("theTask").documentation == "Very important"


def test_camunda_gateway_and_prefixed_models() -> None:
    spec = only_process(camunda_file("ExclusiveGatewayTest.testDivergingExclusiveGateway.bpmn20.xml"))
    assert spec.element("exclusiveGw").outgoing == ("flow2", "flow3", "flow4")
    assert [spec.flow(f).condition.source for f in ("flow2", "flow3", "flow4")] == [  # type: ignore[union-attr]
        "${input == 1}",
        "${input == 2}",
        "${input == 3}",
    ]
    grouped = only_process(camunda_file("groupTest.bpmn"))  # bpmn: prefix, DI, incoming/outgoing children
    assert isinstance(grouped.element("ExclusiveGateway_0th3x5r"), ParallelGateway)
    assert sources(grouped.element("Task_1vvlz78").candidate_users) == ["kermit"]  # type: ignore[attr-defined]
    assert sources(grouped.element("Task_0yawytx").candidate_groups) == ["management"]  # type: ignore[attr-defined]


# --- validation errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "element_id", "tag", "needle", "detail"),
    [
        ("invalid_duplicate_id.bpmn", "task", "endEvent", '<endEvent id="task"', "duplicate id 'task'"),
        ("invalid_unknown_target.bpmn", "f1", "sequenceFlow", 'id="f1"', "targetRef 'nowhere' is not a flow node"),
        ("invalid_missing_source.bpmn", "f1", "sequenceFlow", 'id="f1"', "sequence flow has no sourceRef"),
        ("invalid_crosses_subprocess.bpmn", "escape", "sequenceFlow", 'id="escape"', "crosses a subprocess boundary"),
        ("invalid_no_start.bpmn", "p", "process", '<process id="p"', "process has no none start event"),
        ("invalid_subprocess_no_start.bpmn", "sub", "subProcess", '<subProcess id="sub"', "subprocess has no start"),
        ("invalid_default.bpmn", "gw", "exclusiveGateway", 'id="gw"', "default flow 'f1' is not an outgoing flow"),
        ("invalid_missing_id.bpmn", None, "userTask", "<userTask", "<userTask> has no id"),
        ("invalid_out_of_end.bpmn", "back", "sequenceFlow", 'id="back"', "end event 'end' cannot have outgoing"),
        ("invalid_human_performer.bpmn", "task", "userTask", "<formalExpression>", "humanPerformer must name a user"),
        ("invalid_initiator.bpmn", "start", "startEvent", 'id="start"', "initiator '_secret' is not a valid"),
        ("invalid_no_process.bpmn", None, "definitions", "<definitions", "no process"),
        ("invalid_root.xml", "dmn", "definitions", "<definitions", "not a BPMN 2.0 document"),
    ],
)  # fmt: skip
def test_validation_errors(name: str, element_id: str | None, tag: str, needle: str, detail: str) -> None:
    path = DATA / name
    with pytest.raises(InvalidDefinition) as info:
        parse_path(path)
    error = info.value
    assert type(error) is InvalidDefinition
    assert error.code == "INVALID_BPMN"
    assert detail in error.detail
    assert (error.file, error.element_id, error.tag) == (name, element_id, tag)
    assert error.line == line_of(path, needle)
    assert error.as_dict()["line"] == error.line


def test_malformed_xml() -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse_path(DATA / "invalid_malformed.bpmn")
    assert info.value.code == "INVALID_BPMN"
    assert info.value.detail.startswith("malformed XML")
    assert info.value.line is not None and info.value.file == "invalid_malformed.bpmn"


def test_duplicate_process_ids() -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse_text('<process id="p"><startEvent id="s" /></process><process id="p"><startEvent id="t" /></process>')
    assert (info.value.element_id, info.value.tag, info.value.line) == ("p", "process", 3)


def test_flow_into_a_start_event() -> None:
    with pytest.raises(InvalidDefinition, match="cannot have incoming") as info:
        parse_text(
            '<process id="p"><startEvent id="s" /><task id="t" />'
            '<sequenceFlow id="back" sourceRef="t" targetRef="s" /></process>'
        )
    assert (info.value.element_id, info.value.tag) == ("back", "sequenceFlow")


@pytest.mark.parametrize(
    ("name", "element_id", "tag", "needle", "detail"),
    [
        ("unsupported_timer_start.bpmn", "start", "startEvent", "<timerEventDefinition",
         "timerEventDefinition on startEvent"),
        ("unsupported_service_task.bpmn", "call", "serviceTask", "<serviceTask", "<serviceTask>"),
        ("unsupported_event_subprocess.bpmn", "onError", "subProcess", "<subProcess", "event subprocess"),
        ("unsupported_multi_instance.bpmn", "each", "userTask", "<multiInstanceLoopCharacteristics",
         "multiInstanceLoopCharacteristics on userTask"),
        ("unsupported_loop_subprocess.bpmn", "again", "subProcess", "<standardLoopCharacteristics",
         "standardLoopCharacteristics on subProcess"),
        ("unsupported_error_end.bpmn", "fail", "endEvent", "<errorEventDefinition", "errorEventDefinition on endEvent"),
        ("unsupported_signal_throw.bpmn", "shout", "intermediateThrowEvent", "<signalEventDefinition",
         "signalEventDefinition on intermediateThrowEvent"),
        ("unsupported_nested.bpmn", "deep", "boundaryEvent", "<boundaryEvent", "<boundaryEvent>"),
    ],
)  # fmt: skip
def test_unsupported_elements(name: str, element_id: str, tag: str, needle: str, detail: str) -> None:
    path = DATA / name
    with pytest.raises(UnsupportedElement) as info:
        parse_path(path)
    error = info.value
    assert error.code == "UNSUPPORTED_ELEMENT"
    assert isinstance(error, InvalidDefinition)
    assert error.detail.startswith(detail)
    assert error.detail.endswith("is not supported yet")
    assert (error.file, error.element_id, error.tag) == (name, element_id, tag)
    assert error.line == line_of(path, needle)


def test_bad_condition_is_reported_on_its_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(text: str, language: str | None = None) -> Any:
        if "amount" in text:
            raise ExpressionError("unexpected token '>'")
        return expressions.compile_expression(text, language)

    monkeypatch.setattr(parser_module, "compile_expression", failing)
    path = DATA / "elements.bpmn"
    with pytest.raises(InvalidDefinition) as info:
        parse_path(path)
    error = info.value
    assert type(error) is InvalidDefinition
    assert (error.element_id, error.tag) == ("big", "sequenceFlow")
    assert error.line == line_of(path, "${amount &gt; 100}")
    assert "unexpected token" in error.detail


def test_bad_template_is_reported_on_its_task(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(text: str) -> Any:
        if text == "${due}":
            raise ExpressionError("names starting with '_' are not allowed")
        return expressions.compile_template(text)

    monkeypatch.setattr(parser_module, "compile_template", failing)
    path = DATA / "vendors.bpmn"
    with pytest.raises(InvalidDefinition) as info:
        parse_path(path)
    assert (info.value.element_id, info.value.tag) == ("camundaTask", "userTask")
    # libxml2 numbers an element by the line where its start tag ends
    assert info.value.line == line_of(path, 'camunda:formKey="  form:camunda  " />')
    assert "dueDate" in info.value.detail


@pytest.mark.parametrize("failure", [KeyError("boom"), ValueError("boom"), RecursionError("boom")])
def test_no_other_exception_escapes(monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    def broken(text: str, language: str | None = None) -> Any:
        raise failure

    monkeypatch.setattr(parser_module, "compile_expression", broken)
    with pytest.raises(InvalidDefinition) as info:
        parse_path(DATA / "elements.bpmn")
    assert info.value.file == "elements.bpmn"
    assert type(failure).__name__ in info.value.detail


# --- hostile and broken input --------------------------------------------------------------------

HOSTILE = [
    "hostile_billion_laughs.bpmn",
    "hostile_external_entity.bpmn",
    "hostile_external_dtd.bpmn",
    "hostile_parameter_entity.bpmn",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_documents_are_refused_quickly(name: str) -> None:
    error = refused_quickly((DATA / name).read_bytes())
    assert error.code == "INVALID_BPMN"
    assert error.detail == DTD_MESSAGE
    assert error.line == 2


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_documents_are_refused_by_the_parser_too(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Defence in depth: without the byte scan, the safe parser and docinfo check still refuse."""
    monkeypatch.setattr(parser_module, "_reject_dtd_markers", lambda raw, file: None)
    error = refused_quickly((DATA / name).read_bytes())
    assert "root:" not in str(error)  # nothing from /etc/passwd leaks into the message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_doctype_in_wide_encodings_is_refused(encoding: str) -> None:
    text = (DATA / "hostile_external_entity.bpmn").read_text(encoding="utf-8")
    data = text.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"').encode(encoding)
    assert b"<!DOCTYPE" not in data
    assert refused_quickly(data).detail == DTD_MESSAGE


def test_quadratic_blowup_is_refused_quickly() -> None:
    entity = "x" * 50_000
    references = "&big;" * 50_000  # 2.5 GB once expanded, 300 kB as written
    data = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE definitions [<!ENTITY big "{entity}">]>\n'
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        f'<process id="p"><startEvent id="s" name="{references}" /></process></definitions>'
    ).encode()
    assert len(data) < parser_module.DEFAULT_MAX_BYTES
    assert refused_quickly(data).detail == DTD_MESSAGE


def test_oversized_data_is_refused_before_parsing() -> None:
    padding = b" " * (50 * 1024 * 1024)
    data = BPMN_HEADER.encode() + b'<process id="p"><startEvent id="s" /></process>' + padding + b"</definitions>"
    error = refused_quickly(data)
    assert "too large" in error.detail


def test_max_bytes_is_configurable() -> None:
    data = (DATA / "subprocess.bpmn").read_bytes()
    assert parse_bpmn(data, max_bytes=len(data)).processes
    with pytest.raises(InvalidDefinition, match="too large"):
        parse_bpmn(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"not xml at all",
        b"<definitions",
        b"\xff\xfe\x00garbage",
        b'<?xml version="1.0" encoding="no-such-codec"?><definitions/>',
        b'<?xml version="1.0" encoding="UTF-8"?><definitions>\xc3\x28</definitions>',
        b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">&undefined;</definitions>',
        b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
    ],
)
def test_broken_input_is_invalid_definition(data: bytes) -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse_bpmn(data, file="broken.bpmn")
    assert info.value.code == "INVALID_BPMN"
    assert info.value.file == "broken.bpmn"


def test_non_bytes_input_is_invalid_definition() -> None:
    with pytest.raises(InvalidDefinition):
        parse_bpmn("<definitions/>")  # type: ignore[arg-type]


def test_xinclude_is_not_processed() -> None:
    parsed = parse_text(
        '<process id="p"><startEvent id="s" />'
        '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text" />'
        "</process>"
    )
    assert list(parsed.processes[0].elements) == ["s"]


def _mutations(data: bytes, seed: int, count: int) -> Iterable[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        at = rng.randrange(len(data))
        kind = rng.randrange(3)
        if kind == 0:
            yield data[:at]
        elif kind == 1:
            yield data[:at] + data[at + rng.randrange(1, 40) :]
        else:
            yield data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]


@pytest.mark.parametrize("name", ["elements.bpmn", "vendors.bpmn", "standard_assignment.bpmn", "subprocess.bpmn"])
def test_mutated_files_never_raise_anything_else(name: str) -> None:
    data = (DATA / name).read_bytes()
    outcomes: Counter[str] = Counter()
    for mutated in _mutations(data, seed=len(name), count=300):
        try:
            parse_bpmn(mutated, file=name)
        except InvalidDefinition as exc:
            assert exc.file == name
            outcomes[exc.code] += 1
        else:
            outcomes["parsed"] += 1
    assert outcomes["INVALID_BPMN"] > 0


def test_builders_table_covers_the_supported_tags() -> None:
    assert set(parser_module.BUILDERS) == {
        "startEvent", "endEvent", "intermediateThrowEvent", "task", "manualTask", "userTask",
        "exclusiveGateway", "parallelGateway", "subProcess",
    }  # fmt: skip
    builders: list[Callable[..., Element]] = list(parser_module.BUILDERS.values())
    assert all(callable(builder) for builder in builders)
