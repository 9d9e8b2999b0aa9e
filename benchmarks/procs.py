"""Processes the proxy benchmark and the fault tests start on 127.0.0.1.

Every server runs as a child process on a free loopback port with its own folder, and
is stopped by its own pid: the fake upstream, the proxy, a private ``redis-server``
and a private PostgreSQL cluster (``initdb``/``pg_ctl``, as the postgres user when
run as root). Waits poll with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "PG_BINDIR",
    "REDIS_SERVER",
    "PgCluster",
    "RedisServer",
    "Service",
    "create_database",
    "delete_redis_prefix",
    "drop_database",
    "free_port",
    "http_ok",
    "psql",
    "python_env",
    "shared_stores",
    "start_fake_upstream",
    "start_proxy",
    "wait_until",
]

PG_BINDIR = Path(os.environ.get("SEMCACHE_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PSQL = shutil.which("psql") or str(PG_BINDIR / "psql")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``check`` (exceptions count as not yet) until true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Service:
    """A child process with a log file; stopped by its pid only."""

    def __init__(self, name: str, args: list[str], *, env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to clients."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def rss_kb(self) -> int:
        """Resident memory (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without ``SEMANTIC_CACHE_*``, the repository importable, plus
    ``extra``: for a child process started by a benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Runs from any folder: the benchmarks package is importable from the repository.
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def start_fake_upstream(
    workdir: Path, *, latency: float = 0.3, chunk_delay: float = 0.05, port: int | None = None
) -> tuple[Service, str]:
    """``python -m semcache_proxy.testing`` on a free port; returns it and its URL."""
    port = port or free_port()
    service = Service(
        "fake-upstream",
        [
            sys.executable,
            "-m",
            "semcache_proxy.testing",
            "--port",
            str(port),
            "--latency",
            str(latency),
            "--chunk-delay",
            str(chunk_delay),
        ],
        env=python_env(),
        log=workdir / f"upstream-{port}.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _alive_and_ok(service, url + "/healthz"),
            timeout=60,
            what="the fake upstream answered /healthz",
        )
    except BaseException:
        service.stop()
        raise
    return service, url


def _alive_and_ok(service: Service, url: str) -> bool:
    if not service.alive():
        raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
    return http_ok(url)


def start_proxy(
    workdir: Path,
    upstream: str,
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    ready_timeout: float = 300.0,
    name: str = "proxy",
) -> tuple[Service, str]:
    """The proxy (:mod:`benchmarks.proxy_server`) on a free port, once ``/readyz`` is 200.

    ``env`` holds ``SEMANTIC_CACHE_*`` settings; nothing else of the caller's
    ``SEMANTIC_CACHE_*`` environment leaks in.
    """
    port = port or free_port()
    settings = {
        "SEMANTIC_CACHE_PROXY_UPSTREAM": upstream,
        "SEMANTIC_CACHE_PROXY_HOST": "127.0.0.1",
        "SEMANTIC_CACHE_PROXY_PORT": str(port),
        **(env or {}),
    }
    service = Service(
        name,
        [sys.executable, "-m", "benchmarks.proxy_server", "--log-level", "warning"],
        env=python_env(settings),
        log=workdir / f"{name}-{port}.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _alive_and_ok(service, url + "/readyz"),
            timeout=ready_timeout,
            what=f"{name} reported ready",
        )
    except BaseException:
        service.stop()
        raise
    return service, url


# -- PostgreSQL -------------------------------------------------------------------------


def psql(uri: str, sql: str, *, timeout: float = 60.0) -> str:
    done = subprocess.run(
        [PSQL, uri, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"psql: {done.stderr.strip()}")
    return done.stdout.strip()


def create_database(admin_uri: str, prefix: str = "semcache_proxybench") -> str:
    """A new database with the vector extension on the server of ``admin_uri``; its URI."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    psql(admin_uri, f"CREATE DATABASE {name}")
    uri = urlunsplit(urlsplit(admin_uri)._replace(path="/" + name))
    psql(uri, "CREATE EXTENSION IF NOT EXISTS vector")
    return uri


def drop_database(admin_uri: str, uri: str) -> None:
    name = urlsplit(uri).path.lstrip("/")
    psql(admin_uri, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PgCluster:
    """A throwaway PostgreSQL cluster on a free loopback port, in a folder of its own."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="semcache-faults-pg-"))
        self.datadir = self.workdir / "data"
        self.port = free_port()

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BINDIR / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            timeout=120,
            check=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.workdir} -c fsync=off"
            " -c shared_buffers=16MB -c max_connections=50"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BINDIR / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.workdir / "log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            capture_output=True,
            timeout=90,
            check=True,
        )
        wait_until(
            lambda: psql(self.uri, "SELECT 1", timeout=5) == "1",
            timeout=30,
            what=f"PostgreSQL on port {self.port} answered",
        )

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: like a crash (no goodbye to clients; data kept)."""
        if not (self.datadir / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BINDIR / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    "60",
                    "stop",
                ]
            ),
            capture_output=True,
            timeout=90,
            check=False,
        )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# -- Redis ------------------------------------------------------------------------------


class RedisServer:
    """A private ``redis-server`` (no persistence) that may be killed and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.service: Service | None = None

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.service = Service(
            f"redis-{self.port}",
            [
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
            ],
            env=dict(os.environ),
            log=self.workdir / "redis.log",
        ).start()
        wait_until(self.ping, timeout=15, what=f"redis-server on port {self.port} answered")

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        if self.service is not None:
            self.service.kill()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


def shared_stores(
    admin_uri: str, redis_uri: str, name: str
) -> tuple[dict[str, str], Callable[[], None]]:
    """A database and a Redis key prefix of a run's own, as a proxy's environment, and
    the function that drops both afterwards."""
    database = create_database(admin_uri, prefix=name)
    prefix = f"{name}_{uuid.uuid4().hex[:10]}"

    def drop() -> None:
        drop_database(admin_uri, database)
        delete_redis_prefix(redis_uri, prefix)

    env = {
        "SEMANTIC_CACHE_PG_URI": database,
        "SEMANTIC_CACHE_REDIS_URI": redis_uri,
        "SEMANTIC_CACHE_PREFIX": prefix,
    }
    return env, drop


def delete_redis_prefix(uri: str, prefix: str) -> int:
    """Delete every key starting with ``prefix``; returns how many."""
    import redis

    client = redis.Redis.from_url(uri)
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.delete(*batch))
                batch = []
        if batch:
            deleted += int(client.delete(*batch))
        return deleted
    finally:
        client.close()
