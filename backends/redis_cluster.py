"""The Redis backend on a Redis Cluster: ``redis+cluster://[[user]:password@]host:port[,host:port...]``.

The key schema and the scripts are those of :mod:`backends.redis`: every script
works in one slot (a partition's or the global one), so redis-py's
``RedisCluster`` sends it to the master of that slot and follows MOVED/ASK
redirections by itself; reads across partitions are pipelines split per node.
While the cluster cannot serve a slot (a master lost, a failover under way:
connection errors, CLUSTERDOWN, TRYAGAIN, MASTERDOWN, redirections exhausted)
every call raises BackendUnavailable (HTTP 503 with ``Retry-After``); the
client re-reads the cluster's layout and recovers by itself once a replica
has taken over.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from backends.redis import UNAVAILABLE, RedisBackend, unavailable_as_domain_error
from backends.redis_wire import packing_on_connect

SCHEME = "redis+cluster"


def startup_nodes(url: str) -> tuple[list[ClusterNode], dict[str, Any]]:
    """The nodes and credentials of a ``redis+cluster://`` URL (its query already removed)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in (SCHEME, "rediss+cluster"):
        raise ValueError(f"a Redis Cluster URL starts with {SCHEME}://, not {parts.scheme}://")
    auth, _, hosts = parts.netloc.rpartition("@")
    options: dict[str, Any] = {}
    if auth:
        user, has_password, password = auth.partition(":")
        if user:
            options["username"] = unquote(user)
        if has_password:
            options["password"] = unquote(password)
    if parts.scheme.lower().startswith("rediss"):
        options["ssl"] = True
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Redis Cluster node is host:port, not {item!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    return nodes, options


class RedisClusterBackend(RedisBackend):
    """:class:`backends.redis.RedisBackend` on a Redis Cluster (see the module docstring)."""

    #: a script works in one slot: the claim reads the identity store's sets (global slot) first
    scripts_span_slots = False

    schemes: tuple[str, ...] = (SCHEME, "rediss+cluster")

    def _connect(self, url: str, socket_timeout: float, health_check_interval: int) -> Any:
        nodes, options = startup_nodes(url)
        return RedisCluster(
            startup_nodes=nodes,
            decode_responses=True,
            encoding_errors="surrogatepass",
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=health_check_interval,
            # a short, bounded retry: a failover shows as a few 503s, never a hang;
            # each retry re-reads the cluster's slots
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            require_full_coverage=True,
            redis_connect_func=packing_on_connect,
            **options,
        )

    def _layout_changed(self) -> None:
        with contextlib.suppress(*UNAVAILABLE):
            self._client.nodes_manager.initialize()

    def _node_pipeline(self, key: str) -> Any:
        """A pipeline on the master of ``key``'s slot (one connection, so WAIT counts its writes)."""
        node = self._client.get_node_from_key(key)
        if node.redis_connection is None:
            self._client.nodes_manager.initialize()
            node = self._client.get_node_from_key(key)
        return node.redis_connection.pipeline(transaction=False)

    def _pipeline(self) -> Any:
        pipe = self._client.pipeline(transaction=False)
        # redis-py's ClusterPipeline hashes keys with a strict encoder of its own:
        # use the client's, which lets lone surrogates through (as every other call)
        pipe.encoder = self._client.encoder
        return pipe

    @unavailable_as_domain_error
    def health_check(self) -> dict[str, Any]:
        """A real read on the global slot and every partition (so every master holding
        one), and the masters' replication state."""
        report = super().health_check()
        masters = self._client.get_primaries()
        report["masters"] = len(masters)
        info = self._client.info("replication", target_nodes=masters)
        report["replicas"] = sum(int(node.get("connected_slaves", 0)) for node in info.values())
        return report

    def close(self) -> None:
        self._client.close()
