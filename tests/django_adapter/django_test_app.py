"""The scenario routes (``tests.support.scenarios.backend``) as Django views behind the middleware.

``SyncRoutes`` (sync views, for WSGI and the test client) and ``AsyncRoutes`` (async
views, for ASGI) are URLconfs; the backend is the ``SEMCACHE_TEST_BACKEND`` setting.
Also an httpx transport that sends requests through Django's test client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.test import Client
from django.urls import path
from django.views.decorators.http import require_POST

from tests.support.scenarios.backend import Backend, Reply

__all__ = ["AsyncRoutes", "DjangoTestClientTransport", "SyncRoutes"]


def _backend() -> Backend:
    backend: Backend = settings.SEMCACHE_TEST_BACKEND
    return backend


def _headers(request: HttpRequest) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


class AfterResponse(HttpResponse):
    """Runs a task once the response is sent: Django closes every response after sending."""

    def __init__(self, *args: Any, task: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._task = task

    def close(self) -> None:
        super().close()
        task, self._task = self._task, None  # type: ignore[assignment]
        if task is not None:
            task()


def _response(reply: Reply, cls: type[HttpResponse] = HttpResponse, **kwargs: Any) -> HttpResponse:
    response = cls(reply.body, status=reply.status, content_type=reply.content_type, **kwargs)
    for name, value in reply.headers:
        if name != "content-type":
            response[name] = value
    return response


def _sse(stream: Any) -> StreamingHttpResponse:
    headers = dict(_backend().stream_headers())
    response = StreamingHttpResponse(stream, content_type=headers.pop("content-type"))
    for name, value in headers.items():
        response[name] = value
    return response


# -- sync views ---------------------------------------------------------------------------


@require_POST
def answer(request: HttpRequest) -> HttpResponse:
    return _response(_backend().answer(request.body, _headers(request)))


@require_POST
def chat(request: HttpRequest) -> HttpResponseBase:
    body = json.loads(request.body)
    if body.get("stream"):
        return _sse(_backend().stream(_headers(request)))
    return _response(_backend().answer(request.body, _headers(request)))


@require_POST
def stream(request: HttpRequest) -> StreamingHttpResponse:
    return _sse(_backend().stream(_headers(request)))


@require_POST
def forever(request: HttpRequest) -> StreamingHttpResponse:
    return _sse(_backend().forever(_headers(request)))


@require_POST
def background(request: HttpRequest) -> HttpResponse:
    backend, headers = _backend(), _headers(request)
    reply = backend.answer(request.body, headers)
    return _response(reply, AfterResponse, task=lambda: backend.background_done(headers))


@require_POST
def limited(request: HttpRequest) -> HttpResponse:
    return _response(_backend().limited(request.body, _headers(request)))


class SyncRoutes:
    urlpatterns = [
        path("api/answer", answer),
        path("v1/chat/completions", chat),
        path("api/stream", stream),
        path("api/forever", forever),
        path("api/background", background),
        path("api/limited", limited),
    ]


# -- async views --------------------------------------------------------------------------


@require_POST
async def answer_async(request: HttpRequest) -> HttpResponse:
    return _response(await _backend().aanswer(request.body, _headers(request)))


@require_POST
async def chat_async(request: HttpRequest) -> HttpResponseBase:
    body = json.loads(request.body)
    if body.get("stream"):
        return _sse(_backend().astream(_headers(request)))
    return _response(await _backend().aanswer(request.body, _headers(request)))


@require_POST
async def stream_async(request: HttpRequest) -> StreamingHttpResponse:
    return _sse(_backend().astream(_headers(request)))


@require_POST
async def forever_async(request: HttpRequest) -> StreamingHttpResponse:
    return _sse(_backend().aforever(_headers(request)))


@require_POST
async def background_async(request: HttpRequest) -> HttpResponse:
    backend, headers = _backend(), _headers(request)
    reply = await backend.aanswer(request.body, headers)
    return _response(reply, AfterResponse, task=lambda: backend.background_done(headers))


@require_POST
async def limited_async(request: HttpRequest) -> HttpResponse:
    return _response(_backend().limited(request.body, _headers(request)))


class AsyncRoutes:
    urlpatterns = [
        path("api/answer", answer_async),
        path("v1/chat/completions", chat_async),
        path("api/stream", stream_async),
        path("api/forever", forever_async),
        path("api/background", background_async),
        path("api/limited", limited_async),
    ]


# -- Django's test client as an httpx transport --------------------------------------------

_SKIPPED_REQUEST_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)


class DjangoTestClientTransport(httpx.BaseTransport):
    """Sends httpx requests through ``django.test.Client``; streamed answers stay lazy."""

    def __init__(self) -> None:
        self.client = Client(raise_request_exception=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _SKIPPED_REQUEST_HEADERS
        }
        response = self.client.generic(
            request.method,
            request.url.raw_path.decode("ascii"),
            data=body,
            content_type=request.headers.get("content-type", "application/octet-stream"),
            headers=headers,
        )
        wire = [(name, value) for name, value in response.items()]
        wire += [("set-cookie", c.output(header="").strip()) for c in response.cookies.values()]
        if response.streaming:
            stream = _DjangoStream(response)
            return httpx.Response(response.status_code, headers=wire, stream=stream)
        return httpx.Response(response.status_code, headers=wire, content=response.content)


class _DjangoStream(httpx.SyncByteStream):
    def __init__(self, response: StreamingHttpResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.streaming_content  # type: ignore[misc]

    def close(self) -> None:
        self._response.close()  # as a WSGI server does when the client goes away
