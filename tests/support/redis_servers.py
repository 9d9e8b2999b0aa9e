"""Redis servers for the tests: the shared one, private ones, a private cluster.

Private servers run on free loopback ports in a temporary folder, so stopping or
pausing them never touches the shared Redis on 6379.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.support.polling import wait_until
from tests.support.ports import free_port

__all__ = [
    "SHARED_REDIS_URI",
    "RedisServer",
    "delete_prefix",
    "random_prefix",
    "redis_cluster",
    "require_shared_redis",
]

SHARED_REDIS_URI = os.environ.get("SEMCACHE_TEST_REDIS_URI", "redis://127.0.0.1:6379/0")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def random_prefix() -> str:
    return f"semcache_test_{uuid.uuid4().hex[:12]}"


def require_shared_redis() -> None:
    try:
        redis.Redis.from_url(SHARED_REDIS_URI, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise RuntimeError(
            f"the store tests need Redis at {SHARED_REDIS_URI} ({exc}); start it with "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' "
            "--appendonly no`"
        ) from exc


def delete_prefix(uri: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (all nodes of a cluster)."""
    client: redis.Redis | redis.RedisCluster
    info = redis.Redis.from_url(uri).info("cluster")
    if info.get("cluster_enabled"):
        client = redis.RedisCluster.from_url(uri)
    else:
        client = redis.Redis.from_url(uri)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for key in keys:
            client.delete(key)
        return len(keys)
    finally:
        client.close()


class RedisServer:
    """A private ``redis-server`` process that a test may stop, pause and restart."""

    def __init__(self, workdir: Path, *, cluster: bool = False) -> None:
        self.workdir = workdir
        self.cluster = cluster
        self.port = free_port(also=10000) if cluster else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--protected-mode",
            "no",
        ]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{self.port}.conf",
                "--cluster-port",
                str(self.port + 10000),
                "--cluster-node-timeout",
                "5000",
            ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, timeout=15, what=f"redis-server on port {self.port} answered")

    def ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} is not running")
        with redis.Redis(port=self.port, socket_timeout=0.5) as client:
            return bool(client.ping())

    def stop(self) -> None:
        """`SHUTDOWN NOSAVE`: the server goes away, and so does its data."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError):
                self.resume()
                subprocess.run(
                    [REDIS_CLI, "-p", str(self.port), "shutdown", "nosave"],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a stalled server)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)


@contextlib.contextmanager
def redis_cluster(workdir: Path, *, masters: int = 3) -> Iterator[list[RedisServer]]:
    """A local Redis Cluster of ``masters`` primaries on loopback ports, torn down after."""
    nodes = [RedisServer(workdir / f"node{i}", cluster=True) for i in range(masters)]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )

        def cluster_ok() -> bool:
            for node in nodes:
                with redis.Redis(port=node.port, socket_timeout=0.5) as client:
                    info = client.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info:
                        return False
            return True

        wait_until(cluster_ok, timeout=30, what="the Redis cluster reported cluster_state:ok")
        yield nodes
    finally:
        for node in nodes:
            node.stop()
