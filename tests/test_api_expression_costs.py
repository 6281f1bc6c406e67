"""An expensive gateway condition through the API: 422 EXPRESSION_ERROR, nothing changed, work bounded."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from flask import Flask

from backends.memory import MemoryBackend
from bpm.expressions import MAX_WORK, record_work
from tests.api_support import Api, fails, make_app, ok

DEFINITIONS = (
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="http://costs.test">'
)


def gateway_process(key: str, condition: str) -> bytes:
    """start -> userTask Work -> exclusive gateway whose conditional flow carries ``condition``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{DEFINITIONS}'
        f'<bpmn:process id="{key}" name="{key}" isExecutable="true">'
        '<bpmn:startEvent id="Start"/><bpmn:sequenceFlow id="f1" sourceRef="Start" targetRef="Work"/>'
        '<bpmn:userTask id="Work" name="Work"/><bpmn:sequenceFlow id="f2" sourceRef="Work" targetRef="Gate"/>'
        '<bpmn:exclusiveGateway id="Gate" default="f4"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="Gate" targetRef="Done">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow><bpmn:sequenceFlow id="f4" sourceRef="Gate" targetRef="Done"/>'
        '<bpmn:endEvent id="Done"/></bpmn:process></bpmn:definitions>'
    ).encode()


@pytest.fixture
def app() -> Flask:
    return make_app(MemoryBackend())


@pytest.mark.parametrize(
    "condition",
    [
        "str([[0]*100000]*1000) != ''",
        "${str([[0]*100000]*1000) != ''}",
        "${[[0]*100000]*1000 == [[0]*100000]*1000}",
        "= len(for x in [0]*100000 return [0]*100000) > 0",
    ],
)
def test_an_expensive_condition_is_a_422_and_the_task_stays_open(app: Flask, condition: str) -> None:
    api = Api(app.test_client())
    ok(api.post("/deployments", data=gateway_process("costly", condition), content_type="text/xml"))
    instance_id = api.start("costly")
    [task] = api.tasks(instance_id)
    before = api.instance(instance_id)
    with record_work() as work:
        response = api.complete(task["id"], "anyone", {"note": "x"})
    body = fails(response, 422, "EXPRESSION_ERROR")
    assert "budget" in body["message"]
    assert work.evaluations >= 1 and work.largest <= MAX_WORK  # the work counted, not seconds
    assert api.tasks(instance_id) == [task]  # still open
    assert api.instance(instance_id) == before  # nothing changed
