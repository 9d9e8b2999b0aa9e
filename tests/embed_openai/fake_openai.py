"""A small OpenAI-compatible embeddings server on a loopback port, for tests.

Real HTTP (``http.server``), so the official client runs unpatched: retries, timeouts,
headers and encodings all go over the wire. Vectors are sums of one seeded random vector
per word, so texts sharing most words are similar and a text always gets the same vector.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

__all__ = ["FakeOpenAI"]

# model -> (native size, can shorten, input limit in UTF-8 bytes)
MODELS = {
    "text-embedding-3-small": (1536, True, 8191),
    "text-embedding-3-large": (3072, True, 8191),
    "text-embedding-ada-002": (1536, False, 8191),
    "fixed-768": (768, False, 2048),
}
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=8192)
def _word(word: str, size: int) -> np.ndarray:
    # Dense, so a shortened vector (dimensions) still carries every word.
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(size).astype(np.float32)


def vector(text: str, size: int) -> np.ndarray:
    v = np.zeros(size, dtype=np.float32)
    for word in _WORD.findall(text.casefold()):
        v += _word(word, size)
    norm = np.linalg.norm(v)
    return v / norm if norm else v


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up before the answer: expected here.
        pass


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """Records every request; ``fail_next`` and ``hold`` script failures."""

    requests: list[Request] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    held: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    rows_missing: int = 0
    api_key: str | None = None
    """When set, requests without ``Authorization: Bearer <api_key>`` get a 401."""
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, count: int, status: int = 500) -> None:
        self.failures.extend([status] * count)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {"status": "ok"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                body = json.loads(raw)
                fake.requests.append(Request(body, {k.lower(): v for k, v in self.headers.items()}))
                if fake.held:
                    fake.release.wait(10)
                if fake.api_key is not None and (
                    self.headers.get("authorization") != f"Bearer {fake.api_key}"
                ):
                    self._send(
                        401,
                        {
                            "error": {
                                "message": "Incorrect API key provided",
                                "code": "invalid_api_key",
                            }
                        },
                    )
                    return
                if fake.failures:
                    status = fake.failures.pop(0)
                    self._send(
                        status, {"error": {"message": "scripted failure"}}, {"retry-after-ms": "1"}
                    )
                    return
                status, answer = fake.answer(body)
                self._send(status, answer)

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._wait_ready()

    def _wait_ready(self) -> None:
        # The socket listens from construction; poll the endpoint until it answers.
        assert self._server is not None
        host, port = self._server.server_address[:2]
        for _ in range(500):
            try:
                conn = http.client.HTTPConnection(str(host), port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                threading.Event().wait(0.01)
        raise RuntimeError("the fake OpenAI server did not start")

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        model = body.get("model")
        if model not in MODELS and not str(model).startswith("any-"):
            return 404, {"error": {"message": f"model {model!r} not found"}}
        native, shortenable, limit = MODELS.get(model, (64, False, 8191))
        inputs = body["input"]
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not inputs or len(inputs) > 2048:
            return 400, {"error": {"message": "input must hold 1 to 2048 items"}}
        size = native
        if "dimensions" in body:
            if not shortenable:
                return 400, {"error": {"message": "This model does not support dimensions"}}
            size = int(body["dimensions"])
        data = []
        for i, text in enumerate(inputs):
            if text == "":
                return 400, {"error": {"message": "'$.input' is invalid: empty string"}}
            if len(text.encode()) > limit:
                return 400, {"error": {"message": "maximum context length exceeded"}}
            v = vector(text, native)[:size]
            v = v / (np.linalg.norm(v) or 1.0)
            if body.get("encoding_format") == "base64":
                embedding: Any = base64.b64encode(v.astype("<f4").tobytes()).decode()
            else:
                embedding = [float(x) for x in v]
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        data = data[: len(data) - self.rows_missing]
        data.reverse()  # clients must order by index, not by position
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return 200, {"object": "list", "data": data, "model": model, "usage": usage}
