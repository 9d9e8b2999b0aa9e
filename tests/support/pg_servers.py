"""PostgreSQL for the store tests: a database of each run's own on the shared server, and
a throwaway cluster of a test's own that it may stop, pause and restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.polling import wait_until
from tests.support.ports import free_port

__all__ = [
    "SHARED_PG_URI",
    "PgCluster",
    "create_database",
    "drop_database",
    "psql",
    "with_database",
]

SHARED_PG_URI = os.environ.get("SEMCACHE_TEST_PG_URI", "postgresql://postgres@127.0.0.1:5432/test")
PG_BINDIR = Path(os.environ.get("SEMCACHE_TEST_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PSQL = shutil.which("psql") or str(PG_BINDIR / "psql")


def psql(uri: str, sql: str, *, timeout: float = 60) -> str:
    done = subprocess.run(
        [PSQL, uri, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def with_database(uri: str, database: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path="/" + database))


def create_database() -> str:
    """A fresh database on the shared server; returns its URI."""
    try:
        psql(SHARED_PG_URI, "SELECT 1", timeout=10)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        raise RuntimeError(
            f"the store tests need PostgreSQL at {SHARED_PG_URI} ({exc}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect 15 main start`"
        ) from exc
    name = f"semcache_test_{uuid.uuid4().hex[:12]}"
    psql(SHARED_PG_URI, f"CREATE DATABASE {name}")
    return with_database(SHARED_PG_URI, name)


def drop_database(uri: str) -> None:
    name = urlsplit(uri).path.lstrip("/")
    psql(SHARED_PG_URI, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PgCluster:
    """A throwaway PostgreSQL cluster on a free loopback port, in a temporary folder."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="semcache-pg-"))
        self.datadir = self.workdir / "data"
        self.port = free_port()
        self._paused: list[int] = []

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
            " -c shared_buffers=16MB -c max_connections=40"
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
        """Stop the server (``immediate``: like a crash, no goodbye to clients)."""
        self.resume()
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

    def _processes(self) -> list[int]:
        pid_file = self.datadir / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    pids.append(int(stat.parent.name))
        return pids

    def pause(self) -> None:
        """SIGSTOP the postmaster and every backend: a server that stops answering."""
        self._paused = self._processes()
        for pid in self._paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._paused = []

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
