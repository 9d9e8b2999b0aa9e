"""Free loopback ports for servers a test starts."""

from __future__ import annotations

import contextlib
import socket

__all__ = ["free_port"]


def free_port(*, also: int | None = None) -> int:
    """A free loopback port (and, with ``also``, whose port + ``also`` is free too)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if also is None:
            return port
        if port + also < 65536:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port + also))
                return port
