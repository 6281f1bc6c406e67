"""Two correlations race for one waiting message: one gets the instance, the other 404.

Two runtimes ("workers") share one store. A gate in a backend subclass holds both
correlations until each has read the wait, so both always see it before either
delivers it: the loser looks again, finds nothing, and answers 404
MESSAGE_NOT_CORRELATED (never 200 with no instance).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from backends.memory import MemoryBackend
from bpm.errors import NotFound
from bpm.runtime import Runtime
from tests.conftest import REDIS_URL, make_redis_backend
from tests.test_runtime_events import EVENTS, Clock, open_elements


class Gate:
    """The first ``parties`` callers wait for each other; later callers pass at once."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties)
        self.left = parties
        self.lock = threading.Lock()

    def passing(self) -> None:
        with self.lock:
            if self.left == 0:
                return
            self.left -= 1
        self.barrier.wait(timeout=60)


class GatedMixin:
    gate: Gate | None = None

    def subscriptions(self, kind: str, name: str) -> list[tuple[str, str]]:
        found = super().subscriptions(kind, name)  # type: ignore[misc]
        if self.gate is not None:
            self.gate.passing()
        return found  # type: ignore[no-any-return]


class GatedMemory(GatedMixin, MemoryBackend):
    pass


@pytest.fixture(params=["memory", "redis"])
def workers(request: pytest.FixtureRequest) -> Iterator[tuple[Runtime, Runtime]]:
    clock = Clock()
    if request.param == "memory":
        shared = GatedMemory()
        backends: list[Any] = [shared, shared]
    else:
        from backends.redis import RedisBackend

        make_redis_backend()  # skips (or fails under CI) when no Redis answers
        cls = type("GatedRedis", (GatedMixin, RedisBackend), {})
        prefix = f"bpmtest:{uuid.uuid4().hex[:12]}"
        backends = [cls(REDIS_URL, prefix=prefix), cls(REDIS_URL, prefix=prefix)]
    backends[0].clear()
    first = Runtime(backends[0], EVENTS, now_ms=clock)
    assert not first.deploy_directory().errors
    second = Runtime(backends[1], EVENTS, now_ms=clock)
    second.cache.reload()
    yield first, second
    backends[0].clear()
    for backend in {id(b): b for b in backends}.values():
        backend.close()


@pytest.mark.parametrize("round_", range(3))
def test_of_two_racing_correlations_one_delivers_and_the_other_is_not_correlated(
    workers: tuple[Runtime, Runtime], round_: int
) -> None:
    first = workers[0]
    instance_id = first.start(unique_id="message_intermediate_catch", business_key="order-7")
    gate = Gate(2)
    for runtime in workers:
        runtime.backend.gate = gate  # type: ignore[attr-defined]
    answers: list[Any] = []
    lock = threading.Lock()

    def correlate(runtime: Runtime) -> None:
        try:
            answer: Any = runtime.correlate_message("payment-received", business_key="order-7", variables={"paid": 1})
        except NotFound as exc:
            answer = exc.code
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=correlate, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers, key=str) == sorted(
        [{"resultType": "Execution", "instanceIds": [instance_id]}, "MESSAGE_NOT_CORRELATED"], key=str
    )
    assert open_elements(first, instance_id) == ["ship"]
