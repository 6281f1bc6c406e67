"""The vendors' expression library on the safe evaluator: Camunda dates, Flowable variables, FEEL temporals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from backends.memory import MemoryBackend
from bpm.expressions import ExpressionError, compile_expression, compile_template, use_clock
from tests.api_support import Api, make_app, ok

NOW = dt.datetime(2025, 11, 29, 13, 20, tzinfo=dt.UTC)  # a Saturday
NOW_MS = int(NOW.timestamp() * 1000)
DAY_MS = 86_400_000
VARS: dict[str, Any] = {
    "x": 5,
    "name": "Ann",
    "items": ["a", "b"],
    "due": "2026-01-31T10:00:00Z",
    "none": None,
    "blank": "",
}


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    with use_clock(NOW_MS):
        yield


def value(text: str, variables: dict[str, Any] = VARS) -> Any:
    return compile_template(text).evaluate(variables)


# --------------------------------------------------------------------------- Camunda / JUEL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${now()}", "2025-11-29T13:20:00.000Z"),
        ("${dateTime().toDate()}", "2025-11-29T13:20:00.000Z"),
        ("${dateTime().plusWeeks(1).toDate()}", "2025-12-06T13:20:00.000Z"),
        ("${dateTime().plusYears(1).plusMonths(2).plusDays(3).toDate()}", "2027-02-01T13:20:00.000Z"),
        ("${dateTime().plusHours(2).plusMinutes(30).plusSeconds(15).toDate()}", "2025-11-29T15:50:15.000Z"),
        ("${dateTime().minusYears(1).minusMonths(1).minusWeeks(1).toDate()}", "2024-10-22T13:20:00.000Z"),
        (
            "${dateTime().minusDays(1).minusHours(1).minusMinutes(1).minusSeconds(1).toDate()}",
            "2025-11-28T12:18:59.000Z",
        ),
        ("${dateTime().plusMonths(3).toDate()}", "2026-02-28T13:20:00.000Z"),  # clamped to the month's end
        ("${dateTime().withTime(17, 0, 0, 0).toDate()}", "2025-11-29T17:00:00.000Z"),
        ("${dateTime().withTimeAtStartOfDay().toDate()}", "2025-11-29T00:00:00.000Z"),
        ("${dateTime().withDayOfMonth(1).withHourOfDay(8).toDate()}", "2025-11-01T08:20:00.000Z"),
        ("${dateTime().toString('yyyy-MM-dd HH:mm:ss.SSS')}", "2025-11-29 13:20:00.000"),
        ("${dateTime().toString(\"EEE, d MMM yy 'at' h a\")}", "Sat, 29 Nov 25 at 1 PM"),
        ("${dateTime().toString()}", "2025-11-29T13:20:00.000Z"),
        ("${dateTime().getYear()}", 2025),
        ("${dateTime().getMonthOfYear() * 100 + dateTime().getDayOfMonth()}", 1129),
        ("${dateTime().getDayOfWeek()}", 6),
        ("${dateTime().getMillis() == now().getTime()}", True),
        ("${dateTime().plusDays(1).isAfter(now())}", True),
        ("${dateTime().isBefore(dateTime().minusSeconds(1))}", False),
        ("${due.plusDays(1).toDate()}", "2026-02-01T10:00:00.000Z"),  # a stored ISO date reads as a date-time
        ("Due ${dateTime().plusDays(2).toString('dd.MM.yyyy')}!", "Due 01.12.2025!"),
    ],
)
def test_camunda_date_time(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_camunda_dates_compare_and_condition() -> None:
    assert compile_expression("${now() < dateTime().plusDays(1)}").evaluate_condition({}) is True
    assert compile_expression("${dateTime().plusDays(1) == dateTime().plusHours(24)}").evaluate_condition({}) is True
    assert compile_expression("${due.isBeforeNow()}").evaluate_condition(VARS) is False


# --------------------------------------------------------------------------- Flowable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${variables:get(x)}", 5),
        ("${variables:get('x')}", 5),
        ("${vars:get(missing)}", None),
        ("${var:getOrDefault(missing, 7)}", 7),
        ("${variables:getOrDefault(none, 'd')}", "d"),
        ("${variables:getOrDefault(x, 7) > 3}", True),
        ("${variables:exists(x)}", True),
        ("${variables:exists('missing')}", False),
        ("${variables:exists(none)}", True),
        ("${variables:isEmpty(blank) && variables:empty(missing)}", True),
        ("${variables:isNotEmpty(items) && !variables:notEmpty(none)}", True),
        ("${variables:equals(name, 'Ann')}", True),
        ("${variables:eq(x, 5.0)}", True),
        ("${variables:notEquals(name, 'Bob') && variables:ne(x, 4)}", True),
        ("${variables:equals(missing, null)}", False),
        ("${variables:contains(items, 'a', 'b')}", True),
        ("${variables:contains(name, 'An', 'z')}", False),
        ("${variables:containsAny(items, 'z', 'b')}", True),
        ("${variables:lowerThan(x, 6) && variables:lt(x, 6) && variables:lessThan(x, 6)}", True),
        ("${variables:lowerThanOrEquals(x, 5) && variables:lte(x, 5)}", True),
        ("${variables:greaterThan(x, 5) || variables:gt(x, 6)}", False),
        ("${variables:greaterThanOrEquals(x, 5) && variables:gte(x, 4)}", True),
        ("${variables:gt(missing, 1)}", False),
        ("${variables:base64(name)}", "QW5u"),
        ("${execution.getVariable('x') + 1}", 6),
        ("${execution.getVariable('missing')}", None),
        ("${execution.hasVariable('name') && !execution.hasVariable('missing')}", True),
        ("${x > 1 ? variables:get(name) : 'no'}", "Ann"),
        ("${x > 9 ? 'no' : variables:get(name)}", "Ann"),
    ],
)
def test_flowable_functions(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_flowable_loop_names_and_a_variable_called_execution() -> None:
    assert value("${for v in [1, 2] return variables:get(v)}") == [1, 2]  # bound names are visible
    assert value("${execution.size()}", {"execution": [1, 2]}) == 2  # a real variable wins


# --------------------------------------------------------------------------- FEEL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("= now()", "2025-11-29T13:20:00.000Z"),
        ("= today()", "2025-11-29"),
        ('= date("2024-01-31")', "2024-01-31"),
        ("= date(2024, 2, 29)", "2024-02-29"),
        ('= date(date and time("2024-01-31T23:00:00Z"))', "2024-01-31"),
        ('= date and time("2024-01-01T10:00:00Z") + duration("P1D")', "2024-01-02T10:00:00.000Z"),
        ('= date and time("2024-01-01T10:00:00+02:00")', "2024-01-01T08:00:00.000Z"),
        ('= date and time("2024-01-01T10:00:00")', "2024-01-01T10:00:00.000Z"),  # no zone: UTC
        ('= duration("P1D") + date("2024-02-28")', "2024-02-29"),
        ('= date("2024-01-31") + duration("P1M")', "2024-02-29"),
        ('= date("2024-03-01") - duration("P1D")', "2024-02-29"),
        ('= date and time("2024-01-02T00:00:00Z") - date and time("2024-01-01T00:00:00Z")', "P1D"),
        ('= date("2024-03-01") - date("2024-02-01")', "P29D"),
        ('= duration("PT1H30M") + duration("PT45M")', "PT2H15M"),
        ('= duration("P1Y2M") - duration("P2M")', "P1Y"),
        ('= -1 * 0 + 1 > 0 and duration("P1D") > duration("PT23H")', True),
        ('= date("2024-01-01") < date("2024-01-02")', True),
        ('= now() > date and time("2024-01-01T00:00:00Z")', True),
        ('= today() = date("2025-11-29")', True),
        ("= today().year * 10000 + today().month * 100 + today().day", 20251129),
        ('= duration("P2DT3H").days + duration("P2DT3H").hours', 5),
        ('= date and time("2024-01-01T10:30:00Z").hour', 10),
        ('= duration("-P1D")', "-P1D"),
        ('= [today(), duration("P2W")]', ["2025-11-29", "P14D"]),
        ('= str(today()) = "2025-11-29"', True),
    ],
)
def test_feel_temporals(text: str, expected: Any) -> None:
    assert value(text) == expected


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${bogus()}", "function 'bogus' is not allowed"),
        ("${variables:set(x, 1)}", "function 'variables:set' is not allowed"),
        ("${execution.setVariable('x', 1)}", "execution method 'setVariable' is not allowed"),
        ("${dateTime().plusFortnights(1)}", "method 'plusFortnights' is not allowed"),
        ("${dateTime().plusDays('x')}", "'plusDays' needs an integer"),
        ("${dateTime().plusYears(100000000)}", "'plusYears' needs an integer"),
        ("${dateTime().plusYears(9000)}", "out of range"),
        ("${dateTime().withTime(25, 0, 0, 0)}", "'withTime' needs hour 0-23"),
        ("${dateTime().toString('yyyy-QQ')}", "pattern letter 'Q' is not supported"),
        ("${name.plusDays(1)}", "cannot read 'Ann' as an ISO 8601 date-time"),
        ("${x.plusDays(1)}", "method 'plusDays' needs a date-time, not a number"),
        ('= date("2024-13-01")', "cannot read '2024-13-01' as an ISO 8601 date"),
        ('= duration("1D")', "cannot read '1D' as an ISO 8601 duration"),
        ('= duration("P")', "as an ISO 8601 duration"),
        ('= date("2024-01-01") + 1', "cannot add a date and a number"),
        ('= date("2024-01-01") < now()', "cannot compare a date and a date-time"),
        ('= duration("P1M") < duration("P30D")', "cannot order a years-months duration and a days-time"),
        ('= date("' + "9" * 100 + '")', "at most 64 characters"),
        ("${variables:get(1)}", "'variables:get' needs a variable name, not a number"),
        ("${variables:get('_secret')}", "names starting with '_' are not allowed"),
        ("${variables:get(x, 1)}", "wrong number of arguments (2) for 'variables:get'"),
    ],
)
def test_refused_with_the_function_named(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template(text).evaluate(VARS)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["${foo:bar(1)}", "bpmn:getDataObject('approved')", "not(bpmn:getDataObject('a'))"])
def test_other_namespaces_are_refused_when_compiled_naming_the_function(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"function '(foo:bar|bpmn:getDataObject)' is not allowed"):
        compile_template(text) if text.startswith("$") else compile_expression(text)


def test_the_system_clock_is_used_without_a_fixed_one() -> None:
    with use_clock(lambda: dt.datetime.now(dt.UTC)):
        before = dt.datetime.now(dt.UTC)
        stamp = compile_template("${now()}").evaluate({})
        after = dt.datetime.now(dt.UTC)
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before - dt.timedelta(milliseconds=1) <= moment <= after


# --------------------------------------------------------------------------- a due date through the API

_DUE_PROCESS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="http://vendors.test">'
    '<bpmn:process id="dueNextWeek" isExecutable="true">'
    '<bpmn:startEvent id="Start"/><bpmn:sequenceFlow id="f1" sourceRef="Start" targetRef="Review"/>'
    '<bpmn:userTask id="Review" name="Review" camunda:dueDate="${dateTime().plusWeeks(1).toDate()}"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="Review" targetRef="End"/><bpmn:endEvent id="End"/>'
    "</bpmn:process></bpmn:definitions>"
)


@pytest.fixture
def app() -> Flask:
    return make_app(MemoryBackend(), BPM_CLOCK=lambda: NOW_MS)  # the runtime's clock reaches dateTime()


def test_camunda_due_date_of_next_week_becomes_the_tasks_due_date(app: Flask) -> None:
    api = Api(app.test_client())
    ok(api.post("/deployments", data=_DUE_PROCESS.encode(), content_type="text/xml"))
    instance_id = api.start("dueNextWeek")
    [task] = api.tasks(instance_id)
    assert task["dueDate"] == NOW_MS + 7 * DAY_MS


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("${approvalService.findApprover(x)}", ("approvalService.findApprover",)),
        ("${foo(1) + bar.baz(now())}", ("foo", "bar.baz")),
        ("${execution.getVariable('x')} ${execution.setVariable('x', 1)}", ("execution.setVariable",)),
        ("${dateTime().plusDays(1).toDate()} ${variables:get(x)} ${len(items)}", ()),
        ('= date and time("2024-01-01T00:00:00Z") + duration("P1D")', ()),
    ],
)
def test_unknown_calls_are_listed_for_deploy_time_checks(text: str, unknown: tuple[str, ...]) -> None:
    assert set(compile_template(text).unknown_calls()) == set(unknown)
