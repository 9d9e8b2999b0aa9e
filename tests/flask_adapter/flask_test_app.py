"""The scenario routes (see ``tests.support.scenarios.backend``) as a Flask app behind the extension.

Also an httpx transport that sends requests through Flask's test client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from flask import Flask, Response, request

from semcache import SemanticCache
from semcache_flask import FlaskSemanticCache
from tests.support.scenarios.backend import Backend, Reply

__all__ = ["FlaskTestClientTransport", "build_app"]


def _headers() -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _response(reply: Reply) -> Response:
    return Response(reply.body, status=reply.status, headers=reply.headers)


def build_app(backend: Backend, cache: SemanticCache, **options: Any) -> Flask:
    app = Flask(__name__)
    app.config["SEMCACHE"] = {"cache": cache}
    FlaskSemanticCache(app, **options)

    def sse(stream: Iterable[bytes]) -> Response:
        return Response(stream, headers=backend.stream_headers())

    @app.post("/api/answer")
    def answer() -> Response:
        return _response(backend.answer(request.get_data(), _headers()))

    @app.post("/v1/chat/completions")
    def chat() -> Response:
        body = request.get_json(force=True)
        if body.get("stream"):
            return sse(backend.stream(_headers()))
        return _response(backend.answer(request.get_data(), _headers()))

    @app.post("/api/stream")
    def stream() -> Response:
        return sse(backend.stream(_headers()))

    @app.post("/api/forever")
    def forever() -> Response:
        return sse(backend.forever(_headers()))

    @app.post("/api/background")
    def background() -> Response:
        headers = _headers()
        response = _response(backend.answer(request.get_data(), headers))
        # Flask's way to run work after the response is sent.
        response.call_on_close(lambda: backend.background_done(headers))
        return response

    @app.post("/api/limited")
    def limited() -> Response:
        return _response(backend.limited(request.get_data(), _headers()))

    return app


_SKIPPED_REQUEST_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class FlaskTestClientTransport(httpx.BaseTransport):
    """Sends httpx requests through ``app.test_client()``; streamed answers stay lazy."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _SKIPPED_REQUEST_HEADERS
        ]
        response = self.client.open(
            request.url.raw_path.decode("ascii"),
            method=request.method,
            data=request.read(),
            headers=headers,
            buffered=False,
        )
        return httpx.Response(
            response.status_code, headers=list(response.headers.items()), stream=_Stream(response)
        )


class _Stream(httpx.SyncByteStream):
    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.response

    def close(self) -> None:
        self._response.close()  # as a WSGI server does when the client goes away
