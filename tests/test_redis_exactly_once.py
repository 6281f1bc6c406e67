"""A write whose reply is lost still happens exactly once and answers success.

A small TCP proxy sits between the backend and Redis. Armed, it lets the next
script call (FCALL or EVALSHA) reach Redis, waits for Redis's reply, and drops the
connection instead of passing the reply on: the script has run, the client saw a
dropped connection. redis-py then retries the call on a new connection; the
script recognises its own request id and answers the first run's reply.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from backends import once
from backends.redis import RedisBackend
from bpm.errors import BackendUnavailable
from bpm.runtime import Runtime
from tests.conftest import DATA, PROCESSES, REDIS_URL, redis_unavailable

EVENTS = DATA / "events"

pytestmark = pytest.mark.redis


class ReplyDroppingProxy:
    """Forwards loopback connections to Redis; ``arm()`` drops the next script's reply."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.dropped = 0
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        self.armed.set()

    def close(self) -> None:
        self._closing = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            state = {"drop_reply": False}
            threading.Thread(target=self._requests, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, state), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, state: dict[str, bool]) -> None:
        try:
            while data := client.recv(65536):
                if (b"EVALSHA" in data.upper() or b"FCALL" in data.upper()) and self.armed.is_set():
                    self.armed.clear()
                    state["drop_reply"] = True
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, server)

    def _replies(self, server: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        try:
            while data := server.recv(65536):
                if state["drop_reply"]:
                    self.dropped += 1
                    break  # the script ran; the client never hears of it
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, server)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture
def proxied() -> Iterator[tuple[Runtime, ReplyDroppingProxy]]:
    parts = urlsplit(REDIS_URL)
    proxy = ReplyDroppingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    url = REDIS_URL.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}", 1)
    backend = RedisBackend(url, prefix=f"bpmtest:{uuid.uuid4().hex[:12]}", health_check_interval=0)
    try:
        backend.ping()
    except Exception as exc:
        redis_unavailable(str(exc))
    runtime = Runtime(backend, PROCESSES)
    runtime.deploy_directory()
    runtime.set_identity("author", ["legal", "finance"], [])
    yield runtime, proxy
    backend.clear()
    backend.close()
    proxy.close()


def test_start_claim_and_complete_with_lost_replies_each_happen_once(
    proxied: tuple[Runtime, ReplyDroppingProxy],
) -> None:
    runtime, proxy = proxied
    backend = runtime.backend
    proxy.arm()
    instance_id = runtime.start(process_name="parallel review", user="author")
    assert proxy.dropped == 1
    tasks = runtime.instance_tasks(instance_id)
    assert len(tasks) == 2 and backend.instance(instance_id) is not None
    proxy.arm()
    runtime.claim(tasks[0].id, "author")
    assert proxy.dropped == 2 and backend.task(tasks[0].id).assignee == "author"  # type: ignore[union-attr]
    for number, task in enumerate(tasks, start=3):
        proxy.arm()
        runtime.complete(task.id, "author", {f"done{number}": True})
        assert proxy.dropped == number
    [publish] = runtime.instance_tasks(instance_id)
    assert publish.task_definition_key == "Publish"
    entries = [e["type"] for e in backend.history(instance_id)]
    assert entries.count("task.completed") == 2 and entries.count("task.claimed") == 1
    state = backend.instance(instance_id).state  # type: ignore[union-attr]
    assert len(state["tokens"]) == 1  # the join fired once


def test_external_task_complete_with_a_lost_reply_happens_once() -> None:
    parts = urlsplit(REDIS_URL)
    proxy = ReplyDroppingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    url = REDIS_URL.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}", 1)
    backend = RedisBackend(url, prefix=f"bpmtest:{uuid.uuid4().hex[:12]}", health_check_interval=0)
    runtime = Runtime(backend, EVENTS)
    try:
        try:
            runtime.deploy_directory()
        except BackendUnavailable as exc:
            redis_unavailable(str(exc))
        instance_id = runtime.start(unique_id="external_tasks", variables={"amount": 5})
        [ext] = backend.instance_externals(instance_id)
        [locked] = backend.fetch_and_lock("w1", {ext.topic: 60_000}, 1, 2**50)
        proxy.arm()
        runtime.complete_external(locked.id, "w1", {"ok": True})
        assert proxy.dropped == 1
        assert backend.external_task(locked.id).status == "completed"  # type: ignore[union-attr]
        entries = [e["type"] for e in backend.history(instance_id)]
        assert entries.count("external.completed") == 1
    finally:
        backend.clear()
        backend.close()
        proxy.close()


def test_a_keyed_write_with_a_lost_reply_counts_as_this_runs_commit_not_a_replay(
    proxied: tuple[Runtime, ReplyDroppingProxy],
) -> None:
    """redis-py's retry of an Idempotency-Key request's write finds that very call's marker:
    the run committed (its outbox runs), it did not replay an earlier run."""
    runtime, proxy = proxied
    with once.keyed(once.KeyedWrite(uuid.uuid4().hex, 60_000)) as write:
        proxy.arm()
        instance_id = runtime.start(process_name="parallel review", user="author")
    assert proxy.dropped == 1
    assert write.committed and not write.replayed
    assert len(runtime.instance_tasks(instance_id)) == 2
