"""Deployed processes: refreshCache, classAction, the process list and uploads."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from flask import Flask

from backends.base import Backend
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import PROCESSES

BOOKING = (PROCESSES / "booking_room.bpmn").read_bytes()
REVIEW = (PROCESSES / "parallel_review.bpmn").read_bytes()
EXAMPLES = {"bookingRoom", "parallelReview", "onboarding", "order", "invoiceReminder", "siteAlarm"}


@pytest.fixture
def process_dir(tmp_path: Path) -> Path:
    """A private copy of the example process folder, free to change."""
    folder = tmp_path / "processes"
    shutil.copytree(PROCESSES, folder)
    return folder


@pytest.fixture
def app(backend: Backend, process_dir: Path) -> Flask:
    return make_app(backend, process_dir)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def _keys(definitions: list[dict[str, object]]) -> set[object]:
    return {d["key"] for d in definitions}


def _versions(api: Api) -> dict[str, int]:
    return {d["key"]: d["version"] for d in ok(api.get("/processes"))}


# -- processes --------------------------------------------------------------------------


def test_processes_lists_latest_versions(api: Api) -> None:
    response = api.get("/processes")
    definitions = ok(response)
    assert response.get_json()["totalRecordCount"] == len(EXAMPLES)
    assert _keys(definitions) >= EXAMPLES
    booking = next(d for d in definitions if d["key"] == "bookingRoom")
    assert booking == {
        "key": "bookingRoom",
        "name": "booking room",
        "version": 1,
        "definitionId": "bookingRoom:1",
        "file": "booking_room.bpmn",
        "appName": "",
        "versionTag": None,
    }


# -- refreshCache ---------------------------------------------------------------------


def test_refresh_cache(api: Api) -> None:
    data = ok(api.post("/refreshCache"))
    assert {p["key"] for p in data["processes"]} == EXAMPLES
    assert all(set(p) == {"key", "name", "version"} for p in data["processes"])
    assert data["errors"] == []


def test_refresh_cache_picks_up_changes_and_reports_bad_files(api: Api, process_dir: Path) -> None:
    (process_dir / "booking_room.bpmn").write_bytes(BOOKING.replace(b"Review booking", b"Check booking"))
    (process_dir / "broken.bpmn").write_bytes(b"<bpmn:definitions oops")
    data = ok(api.post("/refreshCache"))
    assert [e["file"] for e in data["errors"]] == ["broken.bpmn"]
    assert data["errors"][0]["message"]
    versions = {p["key"]: p["version"] for p in data["processes"]}
    assert versions == {**dict.fromkeys(EXAMPLES, 1), "bookingRoom": 2}  # the others still deploy
    instance_id = api.start("booking room")
    assert api.tasks(instance_id)[0]["name"] == "Check booking"
    assert ok(api.post("/refreshCache"))["processes"] == data["processes"]  # unchanged files: no new version


def test_refresh_cache_reaches_every_worker_within_a_second(backend: Backend, process_dir: Path) -> None:
    """A worker reads the cache generation at most once a second of its monotonic clock."""
    worker_a = Api(make_app(backend, process_dir).test_client())
    app_b = make_app(backend, process_dir)
    seconds = [0.0]
    app_b.extensions["bpm_runtime"].cache.clock = lambda: seconds[0]
    worker_b = Api(app_b.test_client())
    assert worker_b.task(worker_b.start("booking room"), "ReviewBooking")["name"] == "Review booking"
    (process_dir / "booking_room.bpmn").write_bytes(BOOKING.replace(b"Review booking", b"Check booking"))
    ok(worker_a.post("/refreshCache"))
    seconds[0] += 1.0
    assert worker_b.task(worker_b.start("booking room"), "ReviewBooking")["name"] == "Check booking"


# -- classAction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"fileNames": ["booking_room.bpmn"]},
        {"fileNames": ["bookingRoom.myApp.booking room.1.jar"], "event": "refresh"},
        {"processName": "booking room"},
        {"processName": "bookingRoom", "fileNames": []},
    ],
)
def test_class_action_refresh(api: Api, body: dict[str, object]) -> None:
    response = api.post("/classAction", json=body)
    data = ok(response)
    assert response.get_json()["totalRecordCount"] == 1
    assert data["responseStatus"] == "SUCCESS"
    assert data["process"] == [{"key": "bookingRoom", "name": "booking room", "version": 1}]
    assert data["files"] == [] and data["exception"] == ""


def test_class_action_refresh_redeploys_a_changed_file(api: Api, process_dir: Path) -> None:
    (process_dir / "booking_room.bpmn").write_bytes(BOOKING.replace(b"Review booking", b"Check booking"))
    data = ok(api.post("/classAction", json={"fileNames": ["booking_room.bpmn"]}))
    assert data["process"] == [{"key": "bookingRoom", "name": "booking room", "version": 2}]
    assert _versions(api) == {**dict.fromkeys(EXAMPLES, 1), "bookingRoom": 2}


def test_class_action_file_returns_the_xml(api: Api) -> None:
    data = ok(api.post("/classAction", json={"processName": "parallel review", "event": "file"}))
    [entry] = data["files"]
    assert entry["fileName"] == "parallel_review.bpmn" and entry["key"] == "parallelReview"
    assert entry["xml"] == REVIEW.decode()


def test_class_action_generate_deploys_a_new_file(api: Api, process_dir: Path) -> None:
    fresh = REVIEW.replace(b'id="parallelReview" name="parallel review"', b'id="freshReview" name="fresh review"')
    (process_dir / "fresh_review.bpmn").write_bytes(fresh)
    fails(api.post("/process/start", json={"processName": "fresh review"}), 404, "PROCESS_NOT_FOUND")
    data = ok(api.post("/classAction", json={"fileNames": ["fresh_review.bpmn"], "event": "generate"}))
    assert data["process"] == [{"key": "freshReview", "name": "fresh review", "version": 1}]
    assert api.start("fresh review")
    again = ok(api.post("/classAction", json={"fileNames": ["fresh_review.bpmn"], "event": "generate"}))
    assert again["process"][0]["version"] == 1


def test_class_action_unknown_process_is_404(api: Api) -> None:
    fails(api.post("/classAction", json={"processName": "no such process"}), 404, "PROCESS_NOT_FOUND")
    fails(api.post("/classAction", json={"fileNames": ["missing.bpmn"], "event": "file"}), 404, "PROCESS_NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [{}, {"event": "refresh"}, {"fileNames": []}, {"fileNames": ["  "]}, {"processName": "x", "event": "explode"}],
)
def test_class_action_needs_a_target_and_a_known_event(api: Api, body: dict[str, object]) -> None:
    body_ = fails(api.post("/classAction", json=body), 400, "VALIDATION_ERROR")
    assert body_["data"]


# -- deployments ----------------------------------------------------------------------


def _deploy(api: Api, data: bytes, **query: str):  # type: ignore[no-untyped-def]
    return api.post("/deployments", data=data, content_type="application/xml", query_string=query)


def test_deploy_same_content_keeps_the_version(api: Api) -> None:
    response = _deploy(api, BOOKING, fileName="booking_room.bpmn")
    [definition] = ok(response)
    assert response.get_json()["totalRecordCount"] == 1
    assert definition["key"] == "bookingRoom" and definition["version"] == 1


def test_deploy_changed_content_makes_a_new_version_once(api: Api) -> None:
    changed = BOOKING.replace(b"Review booking", b"Check booking")
    [definition] = ok(_deploy(api, changed, fileName="rooms.bpmn", appName="rooms"))
    assert definition["version"] == 2 and definition["definitionId"] == "bookingRoom:2"
    assert definition["file"] == "rooms.bpmn" and definition["appName"] == "rooms"
    [again] = ok(_deploy(api, changed, fileName="rooms.bpmn", appName="rooms"))
    assert again["version"] == 2
    assert _versions(api)["bookingRoom"] == 2
    assert api.tasks(api.start("booking room"))[0]["name"] == "Check booking"
    old = ok(api.post("/process/start", json={"processName": "booking room", "snapVersion": "1"}))
    assert api.tasks(old)[0]["name"] == "Review booking"


def test_deploy_raw_octet_stream_and_multipart(api: Api) -> None:
    fresh = REVIEW.replace(b'id="parallelReview" name="parallel review"', b'id="upReview" name="uploaded review"')
    response = api.post("/deployments", data=fresh, content_type="application/octet-stream")
    [definition] = ok(response)
    assert definition["key"] == "upReview" and definition["file"] == "upload.bpmn"
    other = fresh.replace(b'id="upReview"', b'id="multiReview"')
    response = api.post(
        "/deployments",
        data={"file": (io.BytesIO(other), "multi review.bpmn")},
        content_type="multipart/form-data",
    )
    [definition] = ok(response)
    assert definition["key"] == "multiReview" and definition["file"] == "multi_review.bpmn"
    assert {"upReview", "multiReview"} <= _keys(ok(api.get("/processes")))


def test_deploy_bad_file_is_400_with_position_and_stores_nothing(api: Api, backend: Backend) -> None:
    before = len(backend.definitions())
    bad = REVIEW.replace(b'targetRef="Publish"', b'targetRef="Nowhere"')
    body = fails(_deploy(api, bad, fileName="bad.bpmn"), 400, "INVALID_BPMN")
    assert body["data"] == {"file": "bad.bpmn", "elementId": "Flow_toPublish", "tag": "sequenceFlow", "line": 17}
    assert "Nowhere" in body["message"]
    assert len(backend.definitions()) == before
    assert _versions(api)["parallelReview"] == 1


def test_deploy_unsupported_element(api: Api) -> None:
    bad = REVIEW.replace(b'<bpmn:parallelGateway id="Join"', b'<bpmn:complexGateway id="Join"')
    body = fails(_deploy(api, bad), 400, "UNSUPPORTED_ELEMENT")
    assert body["data"]["elementId"] == "Join" and body["data"]["tag"] == "complexGateway"
    assert isinstance(body["data"]["line"], int)


@pytest.mark.parametrize(
    "data",
    [
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
        b"\x00\xff\xfe",
    ],
)
def test_deploy_hostile_or_broken_xml_is_400(api: Api, data: bytes) -> None:
    fails(_deploy(api, data), 400, "INVALID_BPMN")
    assert _keys(ok(api.get("/processes"))) == EXAMPLES


def test_deploy_errors(api: Api) -> None:
    fails(api.post("/deployments", json={"xml": "<x/>"}), 415, "UNSUPPORTED_MEDIA_TYPE")
    fails(api.post("/deployments"), 415, "UNSUPPORTED_MEDIA_TYPE")
    fails(_deploy(api, b""), 400, "VALIDATION_ERROR")
    fails(_deploy(api, BOOKING, fileName="../../etc/passwd"), 400, "VALIDATION_ERROR")
    fails(api.post("/deployments", data={"other": "x"}, content_type="multipart/form-data"), 400, "VALIDATION_ERROR")


def test_deploy_size_limit(backend: Backend, process_dir: Path) -> None:
    api = Api(make_app(backend, process_dir, BPM_MAX_BPMN_BYTES=len(BOOKING) + 10).test_client())
    ok(_deploy(api, BOOKING))
    padded = BOOKING + b"<!--" + b"x" * 200_000 + b"-->"
    fails(_deploy(api, padded), 413, "PAYLOAD_TOO_LARGE")
    big = BOOKING.replace(b"</bpmn:definitions>", b"<!--" + b"x" * 2 * 1024 * 1024 + b"-->\n</bpmn:definitions>")
    big_api = Api(make_app(backend, process_dir).test_client())
    ok(_deploy(big_api, big))  # over the 1 MiB JSON limit, under the 5 MiB BPMN limit
