"""`semcache-proxy` as a separate process, as a user starts it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

from tests.support.polling import wait_until
from tests.support.ports import free_port

__all__ = ["start_proxy", "stop_proxy"]


def start_proxy(
    upstream: str | None,
    *,
    env: Mapping[str, str],
    ready_within: float,
    cwd: Path | None = None,
    options: Sequence[str] = (),
    log_level: str = "warning",
    stderr: IO[bytes] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the proxy CLI in front of ``upstream`` (``None``: the one its settings name)
    with further command-line ``options``; return it once ``/readyz`` says 200.

    ``stderr``: a file its log goes to (a file, not a pipe: nothing has to drain it).
    """
    port = free_port()
    args = [sys.executable, "-m", "semcache_proxy.cli", *options]
    if upstream is not None:
        args += ["--upstream", upstream]
    args += ["--port", str(port), "--log-level", log_level]
    proc = subprocess.Popen(args, env=dict(env), cwd=cwd, stderr=stderr)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            return True  # no use waiting: reported below
        return httpx.get(url + "/readyz").status_code == 200

    try:
        wait_until(ready, timeout=ready_within, what="the proxy answered /readyz")
        assert proc.poll() is None, "proxy exited"
    except BaseException:
        stop_proxy(proc)
        raise
    return proc, url


def stop_proxy(proc: subprocess.Popen[bytes], *, within: float = 10) -> None:
    proc.terminate()
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
