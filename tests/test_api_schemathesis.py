"""A schemathesis run against ``/openapi.json``: every operation, on the memory backend and on Redis,
with authentication off and on (as an administrator holding a JWT).

Each operation gets schema-valid (positive) and schema-breaking (negative) requests,
then positive ones aimed at a live instance and task, so the success paths are
checked too. No response may be a 5xx or break the documented schema, status code
or content type. Examples per operation and mode: ``BPM_SCHEMATHESIS_EXAMPLES``
(default 25); the generation is derandomized, so every run sends the same requests.
The number of requests sent is printed at the end of the test session.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from backends.base import Backend
from backends.memory import MemoryBackend
from tests.api_support import make_app
from tests.auth_support import AUTH_CONFIG, as_admin
from tests.conftest import DATA, make_backend

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("BPM_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _operation_labels() -> list[str]:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", make_app(MemoryBackend()))
    return sorted(result.ok().label for result in schema.get_all_operations())


OPERATIONS = _operation_labels()


EXTERNAL_TASKS = DATA / "events" / "external_tasks.bpmn"


def _live_ids(app: Flask) -> dict[str, str]:
    """A running booking instance and its open task, and a locked external task, for positive
    requests on real ids."""
    runtime = app.extensions["bpm_runtime"]
    instance_id = runtime.start(process_name="booking room", variables={"RoomObject": {"capacity": 20}}, user="carol")
    [task] = runtime.instance_tasks(instance_id)
    runtime.deploy(EXTERNAL_TASKS.read_bytes(), file=EXTERNAL_TASKS.name)
    runtime.start(unique_id="external_tasks", variables={"amount": 1})
    [(external, _)] = runtime.fetch_and_lock("schemathesis", {"payments": 60_000})
    return {
        "instance_id": instance_id,
        "task_id": task.id,
        "external_task_id": external.id,
        "user": "carol",
        "process_name": "booking room",
    }


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Memory and one Redis (input handling does not depend on the storage topology: the Redis
    Cluster runs the contract, API and race suites instead)."""
    instance = make_backend(request.param)
    instance.clear()
    yield instance
    instance.clear()
    instance.close()


def test_every_route_is_covered() -> None:
    assert len(OPERATIONS) == 39, (
        OPERATIONS
    )  # API.md routes, extensions, conditions, forms, diagrams, /instances, /health, /ready


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["off", "jwt"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_schemathesis(backend: Backend, label: str, auth: str, record_property: Any) -> None:
    app = make_app(backend, **(AUTH_CONFIG if auth == "jwt" else {}))
    headers = as_admin() if auth == "jwt" else None
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    [operation] = [r.ok() for r in schema.get_all_operations() if r.ok().label == label]
    kind = f"{'memory' if isinstance(backend, MemoryBackend) else 'redis'}/auth {auth}"
    live = _live_ids(app)
    names = [parameter.name for parameter in operation.path_parameters]
    path_parameters = {name: live[name] for name in names if name in live} or None
    runs: list[tuple[GenerationMode, dict[str, Any] | None]] = [
        (GenerationMode.POSITIVE, None),
        (GenerationMode.NEGATIVE, None),
    ]
    if path_parameters:
        runs.append((GenerationMode.POSITIVE, path_parameters))
    sent: Counter[str] = Counter()
    for mode, fixed in runs:

        @SETTINGS
        @given(case=operation.as_strategy(mode, path_parameters=fixed))
        def run(case: Any) -> None:
            sent[kind] += 1
            case.call_and_validate(checks=CHECKS, headers=headers)

        try:
            run()
        except Unsatisfiable:
            # nothing to break: no body or query, and path parameters that every string satisfies
            assert mode is GenerationMode.NEGATIVE, label
    # requests sent, by backend: summed over the run (every xdist worker's) in conftest.py
    record_property("schemathesis_requests", dict(sent))
