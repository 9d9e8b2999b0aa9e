"""Run an app on a loopback port, in a thread of the test process.

:func:`serve_asgi` uses uvicorn, :func:`serve_wsgi` werkzeug's threaded server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

__all__ = ["serve_asgi", "serve_wsgi"]


@contextmanager
def serve_asgi(
    app: Any,
    *,
    startup_timeout: float = 30.0,
    lifespan: Literal["auto", "on", "off"] = "on",
    http: str = "auto",
) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1`` (a free port); yields the base URL.

    The server runs its own event loop in a thread, so the test can be plain sync
    code and share objects (backend, counters) with the app. ``lifespan="off"`` for
    apps without the lifespan protocol (Django). ``http`` picks uvicorn's parser
    (``auto``: httptools where installed, else h11). The socket is bound here, before the
    server starts, so no other process can take the port in between.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan=lifespan,
        timeout_graceful_shutdown=2,
        access_log=False,
        http=http,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:  # poll readiness; no fixed sleep
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.002)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI ``app`` with werkzeug's threaded server on ``127.0.0.1``; yields the base URL.

    One thread per request, as a WSGI server gives; the socket listens before this
    yields, so the first request waits for no one.
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
