"""Request bodies through the proxy: streamed to the upstream, aborted when the client
leaves, and refused when their framing conflicts."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from typing import Any

import pytest

from tests.proxy.conftest import make_proxy
from tests.support.servers import serve_asgi


class RecordingUpstream:
    """An ASGI upstream that reads bodies chunk by chunk and records what arrived."""

    def __init__(self) -> None:
        self.first_chunk = threading.Event()
        self.complete: list[dict[str, Any]] = []
        self.aborted: list[int] = []
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        digest = hashlib.sha256()
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.aborted.append(size)
                return
            chunk = message.get("body", b"")
            if chunk:
                self.first_chunk.set()
            digest.update(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        self.complete.append({"size": size, "sha": digest.hexdigest()})
        body = json.dumps({"size": size, "sha": digest.hexdigest()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def recording():
    upstream = RecordingUpstream()
    with serve_asgi(upstream) as url:
        yield upstream, url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return int(head.split(b" ", 2)[1]), body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out += rest[:size]
        data = rest[size + 2 :]


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("PUT", "/upload", {}),  # a method the cache does not look at
        ("POST", "/v1/chat/completions", {"max_body_bytes": 64 * 1024}),  # over the limit
    ],
)
def test_a_large_upload_streams_to_the_upstream(recording, method, path, options):
    upstream, upstream_url = recording
    total = 20 * 1024 * 1024
    payload = bytes(range(256)) * (total // 256)
    with serve_asgi(make_proxy(upstream_url, **options)) as url, _connect(url) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {total}\r\nConnection: close\r\n\r\n".encode()
        )
        half = total // 2
        sock.sendall(payload[:half])
        # The upstream gets bytes while the client still holds back the second half:
        # the proxy does not wait for (and keep) the whole body.
        assert upstream.first_chunk.wait(10), "the upstream received nothing before the end"
        sock.sendall(payload[half:])
        status, body = _read_response(sock)
    assert status == 200
    assert json.loads(body) == {"size": total, "sha": hashlib.sha256(payload).hexdigest()}


@pytest.mark.parametrize(
    "framing", [b"Content-Length: 100000\r\n", b"Transfer-Encoding: chunked\r\n"]
)
def test_a_client_that_leaves_mid_body_never_reaches_the_upstream_complete(recording, framing):
    upstream, upstream_url = recording
    part = b'{"q": "hi'  # 9 bytes of a body that never ends
    chunk = part if framing.startswith(b"Content") else b"%x\r\n%s\r\n" % (len(part), part)
    with serve_asgi(make_proxy(upstream_url)) as url:
        with _connect(url) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n" + framing + b"\r\n" + chunk
            )
            time.sleep(0.2)
        deadline = time.monotonic() + 3
        while not (upstream.complete or upstream.aborted) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    assert upstream.complete == []


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_conflicting_framing_gets_a_400_and_never_reaches_the_upstream(recording, parser):
    if parser == "httptools":
        pytest.importorskip("httptools")
    upstream, upstream_url = recording
    with serve_asgi(make_proxy(upstream_url), http=parser) as url, _connect(url) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n"
        )
        status, body = _read_response(sock)
    assert 400 <= status < 500
    if parser == "h11":  # h11 hands the request over: the proxy refuses it
        assert json.loads(body)["error"]["type"] == "conflicting_framing"
    # httptools refuses it itself, before the proxy sees it
    assert upstream.complete == [] and upstream.headers == []


def test_the_forwarded_body_is_framed_by_the_proxy(recording):
    upstream, upstream_url = recording
    with serve_asgi(make_proxy(upstream_url)) as url, _connect(url) as sock:
        # A chunked client body, complete: the upstream gets it with its own length.
        sock.sendall(
            b"PUT /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        status, _ = _read_response(sock)
    assert status == 200
    assert upstream.complete == [{"size": 5, "sha": hashlib.sha256(b"hello").hexdigest()}]
    assert upstream.headers[0].get("content-length") == "5"
    assert "transfer-encoding" not in upstream.headers[0]
