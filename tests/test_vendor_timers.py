"""Camunda 7 idioms of timers and starts: Quartz cron cycles, processes without a none start,
and deployment batches where one file is bad (issue 11, part 3).

Timers fire by moving an injected clock and calling ``fire_due_timers``; nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from backends.base import Backend, start_timer_member
from bpm.engine import timers
from bpm.errors import ExpressionError, InvalidDefinition, Unprocessable
from bpm.runtime import Runtime
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import DATA

VENDOR = DATA / "vendor"
BAD = VENDOR / "bad"
MINUTE = 60_000
T0 = int(dt.datetime(2030, 1, 7, 8, 58, 30, tzinfo=dt.UTC).timestamp() * 1000)  # a Monday


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


# -- the cron dialect ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "first", "second"),
    [
        ("0 0/5 * * * ?", "2030-01-07T09:00:00", "2030-01-07T09:05:00"),
        ("0 0 12 ? * MON-FRI", "2030-01-07T12:00:00", "2030-01-08T12:00:00"),
        ("0 0 9 ? * 2-6", "2030-01-07T09:00:00", "2030-01-08T09:00:00"),  # Quartz: 2 = Monday
        ("0 15 10 ? * 6#3", "2030-01-18T10:15:00", "2030-02-15T10:15:00"),  # third Friday
        ("30 15 10 ? * 6L", "2030-01-25T10:15:30", "2030-02-22T10:15:30"),  # last Friday
        ("0 0 12 L * ?", "2030-01-31T12:00:00", "2030-02-28T12:00:00"),
        ("0 0 12 1/10 * ? *", "2030-01-11T12:00:00", "2030-01-21T12:00:00"),
        ("0 0 12 1 1 ? 2031", "2031-01-01T12:00:00", None),
    ],
)
def test_quartz_cron_cycles(cron: str, first: str, second: str | None) -> None:
    cycle = timers.parse_cycle(cron, T0)
    assert cycle.first_due == at(first)
    following = cycle.next_after(cycle.first_due, cycle.remaining)
    assert (following and following[0]) == (at(second) if second else None)


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("0 61 * * * ?", "not valid"),
        ("0 0 12 1 * 2", "both a day of month and a day of week"),
        ("0 0 12 LW * ?", "LW and L-n"),
        ("0 0 12 ? * 8", "not 1-7"),
        ("0 0 12 30 2 ?", "never fires"),
        ("0 0 12 * *", "neither an ISO 8601 repeating interval"),
    ],
)
def test_bad_cron_cycles_are_refused_with_the_reason(cron: str, says: str) -> None:
    with pytest.raises(ExpressionError, match=says):
        timers.parse_cycle(cron, T0)


# -- deployment ----------------------------------------------------------------------------


def test_bad_cron_upload_is_400_naming_file_element_line_attribute_and_stores_nothing(backend: Backend) -> None:
    api = Api(make_app(backend, VENDOR).test_client())
    before = sorted(d.definition_id for d in backend.definitions())
    body = fails(
        api.post("/deployments", data=(BAD / "bad_cron.bpmn").read_bytes(), content_type="application/xml",
                 query_string={"fileName": "bad_cron.bpmn"}),
        400, "INVALID_BPMN",
    )  # fmt: skip
    assert body["data"]["file"] == "bad_cron.bpmn"
    assert body["data"]["elementId"] == "everyHour"
    assert body["data"]["line"] == 7  # the timerEventDefinition
    assert body["data"]["attribute"] == "timeCycle"
    assert "0 0/5 * * * ?" in body["data"]["fix"]
    assert "0 61 * * * ?" in body["message"]
    assert sorted(d.definition_id for d in backend.definitions()) == before
    assert backend.due_timers(T0 + 10**12, 1000) == [] or all(
        "bad_cron" not in member for member, _ in backend.due_timers(T0 + 10**12, 1000)
    )


def test_a_bad_file_in_the_folder_is_reported_and_the_others_deploy_and_schedule(
    backend: Backend, tmp_path: Path
) -> None:
    folder = tmp_path / "processes"
    folder.mkdir()
    shutil.copy(BAD / "bad_cron.bpmn", folder / "a_bad_cron.bpmn")  # sorted first: it must not stop the others
    shutil.copy(VENDOR / "cron_start.bpmn", folder / "b_cron_start.bpmn")
    app = make_app(backend, folder, BPM_DEPLOY_ON_START=True)  # the service starts
    api = Api(app.test_client())
    assert {d["key"] for d in ok(api.get("/processes"))} == {"cron_start"}
    members = [member for member, _ in backend.due_timers(10**15, 1000)]
    assert start_timer_member("cron_start:1", "every5min") in members
    report = ok(api.post("/refreshCache"))
    [error] = report["errors"]
    assert error["file"] == "a_bad_cron.bpmn" and "0 61 * * * ?" in error["message"]
    assert [p["key"] for p in report["processes"]] == ["cron_start"]


def test_one_key_in_several_files_makes_one_version_per_content(backend: Backend, tmp_path: Path) -> None:
    folder = tmp_path / "processes"
    folder.mkdir()
    xml = (VENDOR / "cron_start.bpmn").read_text()
    (folder / "one.bpmn").write_text(xml)
    (folder / "two.bpmn").write_text(xml.replace("Check the queue", "Check the queue again"))
    runtime = Runtime(backend, folder)
    for _ in range(3):
        report = runtime.deploy_directory()
        assert not report.errors
    assert sorted(d.version for d in backend.definitions() if d.key == "cron_start") == [1, 2]


# -- cron timers firing --------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(backend: Backend, clock: Clock) -> Runtime:
    rt = Runtime(backend, VENDOR, now_ms=clock)
    report = rt.deploy_directory()
    assert not report.errors, report.errors
    return rt


def test_a_cron_timer_start_fires_every_five_minutes(runtime: Runtime, clock: Clock) -> None:
    member = start_timer_member("cron_start:1", "every5min")
    assert dict(runtime.backend.due_timers(10**15, 1000))[member] == at("2030-01-07T09:00:00")
    clock.now = at("2030-01-07T08:59:59")
    assert runtime.fire_due_timers() == 0
    clock.now = at("2030-01-07T09:00:00")
    assert runtime.fire_due_timers() == 1
    assert dict(runtime.backend.due_timers(10**15, 1000))[member] == at("2030-01-07T09:05:00")
    clock.now = at("2030-01-07T09:05:00")
    assert runtime.fire_due_timers() == 1
    assert runtime.fire_due_timers() == 0


def test_a_cron_boundary_cycle_reminds_on_weekday_mornings(runtime: Runtime, clock: Clock) -> None:
    instance_id = runtime.start(unique_id="cron_boundary")

    def reminders() -> int:
        return [t.task_definition_key for t in runtime.instance_tasks(instance_id)].count("remind")

    for day, expected in (("07", 1), ("08", 2), ("09", 3), ("10", 4), ("11", 5), ("12", 5), ("13", 5)):
        clock.now = at(f"2030-01-{day}T08:59:59")
        runtime.fire_due_timers()
        assert reminders() == (expected - 1 if day <= "11" else expected)
        clock.now = at(f"2030-01-{day}T09:00:00")
        runtime.fire_due_timers()
        assert reminders() == expected, day  # Saturday 12 and Sunday 13: none
    assert "work" in [t.task_definition_key for t in runtime.instance_tasks(instance_id)]


# -- starting a process without a none start event -----------------------------------------


def test_start_by_key_uses_the_only_start_event(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="message_only_start", user="carol")
    [task] = runtime.instance_tasks(instance_id)
    assert (task.task_definition_key, task.assignee) == ("handle", "carol")
    timer_only = runtime.start(unique_id="cron_start")
    assert [t.task_definition_key for t in runtime.instance_tasks(timer_only)] == ["check"]


def test_start_by_key_with_several_event_starts_names_the_choices(runtime: Runtime) -> None:
    with pytest.raises(Unprocessable) as info:
        runtime.start(unique_id="two_event_starts")
    assert info.value.code == "START_EVENT_AMBIGUOUS"
    assert "'byMail' (message)" in info.value.message and "'byAlarm' (signal)" in info.value.message


def test_start_ambiguity_is_422_over_http(backend: Backend) -> None:
    api = Api(make_app(backend, VENDOR).test_client())
    body = fails(api.post("/process/start", json={"uniqueId": "two_event_starts"}), 422, "START_EVENT_AMBIGUOUS")
    assert "byMail" in body["message"] and "byAlarm" in body["message"]
    assert ok(api.post("/process/start", json={"uniqueId": "message_only_start"}))


def test_bad_cron_in_a_template_of_an_intermediate_timer_is_checked_when_literal() -> None:
    from backends.memory import MemoryBackend

    xml = (VENDOR / "cron_boundary.bpmn").read_bytes().replace(b"0 0 9 ? * 2-6", b"0 0 25 ? * 2-6")
    runtime = Runtime(MemoryBackend())
    with pytest.raises(InvalidDefinition) as info:
        runtime.deploy(xml, file="x.bpmn")
    assert (info.value.element_id, info.value.attribute) == ("reminder", "timeCycle")
    assert runtime.backend.definitions() == []
