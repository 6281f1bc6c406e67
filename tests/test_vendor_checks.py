"""Deploy-time checks of every expression the engine evaluates (issue 11, part 2).

One model holds an expression in each place; each test breaks one of them and expects the
deployment to fail with 400 naming the file, element, line and attribute, storing nothing.
"""

from __future__ import annotations

import pytest

from backends.base import Backend
from backends.memory import MemoryBackend
from bpm.errors import InvalidDefinition
from bpm.runtime import Runtime
from tests.api_support import Api, fails, make_app
from tests.conftest import DATA

TEMPLATE = (DATA / "vendor" / "templates" / "every_expression.bpmn").read_text()
GOOD = {
    "ASSIGNEE": "${initiator}",
    "CANDIDATE_USERS": "ann, ${reviewers}",
    "CANDIDATE_GROUPS": "sales",
    "DUE_DATE": "${due}",
    "PRIORITY": "${prio}",
    "CARDINALITY": "${count}",
    "TIME_DURATION": "PT1H",
    "CONDITION": "${amount &gt; 10}",
    "CALLED_ELEMENT": "child",
    "SOURCE_EXPRESSION": "${amount * 2}",
}
BROKEN = "${a +}"


def model(**replace: str) -> bytes:
    text = TEMPLATE
    for placeholder, value in {**GOOD, **replace}.items():
        text = text.replace(placeholder, value)
    return text.encode()


def line_of(data: bytes, needle: str) -> int:
    text = data.decode()
    return text[: text.index(needle)].count("\n") + 1


def test_the_good_model_deploys() -> None:
    assert Runtime(MemoryBackend()).deploy(model(), file="good.bpmn")


@pytest.mark.parametrize(
    ("placeholder", "element", "attribute", "value"),
    [
        ("ASSIGNEE", "review", "assignee", BROKEN),
        ("CANDIDATE_USERS", "review", "candidateUsers", "ann, " + BROKEN),
        ("CANDIDATE_GROUPS", "review", "candidateGroups", BROKEN),
        ("DUE_DATE", "review", "dueDate", BROKEN),
        ("PRIORITY", "review", "priority", BROKEN),
        ("CARDINALITY", "review", "loopCardinality", BROKEN),
        ("TIME_DURATION", "late", "timeDuration", BROKEN),
        ("TIME_DURATION", "late", "timeDuration", "one hour"),  # literal: checked as a duration
        ("CONDITION", "f3", "condition", BROKEN),
        ("CALLED_ELEMENT", "call", "calledElement", BROKEN),
        ("SOURCE_EXPRESSION", "call", "sourceExpression", BROKEN),
    ],
)
def test_a_bad_expression_fails_the_deployment_naming_where(
    placeholder: str, element: str, attribute: str, value: str
) -> None:
    runtime = Runtime(MemoryBackend())
    data = model(**{placeholder: value})
    with pytest.raises(InvalidDefinition) as info:
        runtime.deploy(data, file="broken.bpmn")
    error = info.value
    assert (error.file, error.element_id, error.attribute) == ("broken.bpmn", element, attribute)
    assert error.line is not None and error.line >= line_of(data, f'id="{element}"')
    assert runtime.backend.definitions() == []


def test_over_http_the_400_names_the_attribute_and_nothing_is_stored(backend: Backend) -> None:
    api = Api(make_app(backend, DATA / "vendor").test_client())
    before = sorted(d.definition_id for d in backend.definitions())
    data = model(DUE_DATE=BROKEN)
    response = api.post(
        "/deployments", data=data, content_type="application/xml", query_string={"fileName": "broken.bpmn"}
    )
    body = fails(response, 400, "INVALID_BPMN")
    assert body["data"]["file"] == "broken.bpmn"
    assert body["data"]["elementId"] == "review"
    assert body["data"]["attribute"] == "dueDate"
    assert body["data"]["line"] == line_of(data, "<multiInstanceLoopCharacteristics>") - 1
    assert sorted(d.definition_id for d in backend.definitions()) == before


def test_check_file_gives_bpm_lint_structured_errors_and_warnings() -> None:
    from bpm.definitions import check_file

    vendor = DATA / "vendor"
    errors, warnings = check_file((vendor / "bad" / "bad_cron.bpmn").read_bytes(), file="bad_cron.bpmn", now_ms=0)
    [error] = errors
    assert warnings == []
    assert (error["file"], error["line"], error["elementId"], error["attribute"]) == (
        "bad_cron.bpmn", 7, "everyHour", "timeCycle")  # fmt: skip
    assert error["code"] == "INVALID_BPMN" and "0 0/5 * * * ?" in str(error["fix"])
    errors, warnings = check_file((vendor / "not_honoured.bpmn").read_bytes(), file="n.bpmn", now_ms=0)
    assert errors == [] and len(warnings) == 6
    assert all({"file", "elementId", "line", "attribute", "message", "instead"} <= set(w) for w in warnings)
