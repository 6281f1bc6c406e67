"""A real Redis Cluster for the tests: 6 ``redis-server --cluster-enabled yes`` processes
on free loopback ports (3 masters, 3 replicas), created by ``redis-cli --cluster create``.

Every wait polls with a bound; nothing sleeps a fixed time to let things settle.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

NODES = 6


def free_ports(count: int) -> list[int]:
    """``count`` free loopback ports whose cluster bus ports (+10000) are free as well."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; RuntimeError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (redis.exceptions.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class LocalCluster:
    """Six local nodes; ``url`` is the ``redis+cluster://`` URL naming all of them."""

    directory: Path
    ports: list[int] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, decode_responses=True)

    def start_node(self, port: int) -> None:
        folder = self.directory / str(port)
        folder.mkdir(exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                "--appendonly", "no", "--save", "", "--dir", str(folder), "--logfile", "redis.log",
                "--slowlog-log-slower-than", "10000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: bool(self.node(port).ping()), 20, f"redis-server on port {port}")

    def start(self) -> None:
        if not shutil.which("redis-server") or not shutil.which("redis-cli"):
            raise RuntimeError("redis-server and redis-cli are needed to create a cluster")
        self.ports = free_ports(NODES)
        for port in self.ports:
            self.start_node(port)
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        done = subprocess.run(
            [*create, "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        self.wait_healthy(60)

    def masters(self) -> list[int]:
        return [p for p in self.live_ports() if self.node(p).info("replication")["role"] == "master"]

    def replicas(self) -> list[int]:
        return [p for p in self.live_ports() if self.node(p).info("replication")["role"] == "slave"]

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def healthy(self, masters: int = 3, replicas: int = 3) -> bool:
        """Every live node sees the cluster ok, with the given masters and linked replicas."""
        live = self.live_ports()
        if any("cluster_state:ok" not in self.node(p).execute_command("CLUSTER", "INFO") for p in live):
            return False
        linked = [p for p in self.replicas() if self.node(p).info("replication").get("master_link_status") == "up"]
        return len(self.masters()) == masters and len(linked) == replicas

    def wait_healthy(self, timeout: float, masters: int = 3, replicas: int = 3) -> None:
        wait_until(lambda: self.healthy(masters, replicas), timeout, "the cluster to be ok")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
