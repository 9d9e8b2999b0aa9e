"""`FlaskSemanticCache`: a semantic cache for a Flask app, as a WSGI layer around it.

The cache sits around ``app.wsgi_app``, so it sees each request before Flask does
and each answer as it goes on the wire (session cookies included), like the ASGI
middleware. The request rules, the lookup, the single flight and the stores are
those of :mod:`semcache.http`, reached through :class:`~semcache.http.BridgedEngine`
(the cache runs on the process's semcache loop thread).
"""

from __future__ import annotations

import contextvars
import io
import logging
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Flask, request

from semcache import SettingsError
from semcache.http import (
    BridgedEngine,
    Bypass,
    CachePlan,
    Forward,
    RecordedBody,
    Replay,
    marked_headers,
    raw_request_path,
)
from semcache.http import HttpRequest as CacheRequest

if TYPE_CHECKING:
    from semcache import SemanticCache

__all__ = ["CONFIG_KEY", "EXTENSION_KEY", "FlaskSemanticCache", "SemanticCacheWSGIMiddleware"]

log = logging.getLogger("semcache")

CONFIG_KEY = "SEMCACHE"
"""``app.config`` key holding the configuration mapping."""
EXTENSION_KEY = "semcache"
"""``app.extensions`` key of the installed :class:`SemanticCacheWSGIMiddleware`."""

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_READ_CHUNK = 64 << 10


class FlaskSemanticCache:
    """Semantic cache for a Flask app: ``FlaskSemanticCache(app)`` or ``init_app(app)``.

    Every JSON POST whose body carries a question (``query``, ``prompt``, ``input``,
    chat or Anthropic ``messages``...) is looked up; answers carry ``X-Semcache:
    hit|miss|bypass`` and hits ``X-Semcache-Similarity``. Streamed answers pass
    through chunk by chunk.

    Configuration: ``app.config["SEMCACHE"]`` (a dict), then the keyword arguments,
    which win. Keys are :class:`semcache.Settings` fields (overriding the
    ``SEMANTIC_CACHE_*`` environment) and the options ``cache`` (a
    :class:`semcache.SemanticCache`, a function returning one, or a dotted path;
    default: one cache per process built from the settings), ``methods``,
    ``path_prefix``, ``extract_query``, ``extract_model``, ``extract_partition``,
    ``ignored_fields`` and ``max_response_bytes``.

    Extractors are called as ``fn(request, body)`` with a :class:`flask.Request` for
    the incoming request, inside a request context of their own (``flask.request``
    and ``session`` work; ``g`` is not the view's).
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self.options = options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = app.config.get(CONFIG_KEY) or {}
        if not isinstance(config, Mapping):
            raise TypeError(f"app.config[{CONFIG_KEY!r}] must be a dict")
        try:
            bridged = BridgedEngine.from_config(config, **self.options)
        except SettingsError as exc:
            raise ValueError(f"semcache configuration: {exc}") from exc
        if bridged.policy.enabled:
            bridged.warm_up()  # the model loads while the app finishes starting
        middleware = SemanticCacheWSGIMiddleware(app.wsgi_app, bridged, flask_app=app)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions[EXTENSION_KEY] = middleware

    @staticmethod
    def cache_for(app: Flask) -> SemanticCache:
        """The :class:`semcache.SemanticCache` serving ``app`` in this process."""
        middleware: SemanticCacheWSGIMiddleware = app.extensions[EXTENSION_KEY]
        return middleware.bridged.cache


class SemanticCacheWSGIMiddleware:
    """The WSGI layer: ``wsgi_app`` behind the cache. ``flask_app`` gives extractors a request."""

    def __init__(
        self, wsgi_app: WSGIApp, bridged: BridgedEngine, *, flask_app: Flask | None = None
    ) -> None:
        self.wsgi_app = wsgi_app
        self.bridged = bridged
        self.flask_app = flask_app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        policy = self.bridged.policy
        method = str(environ.get("REQUEST_METHOD") or "GET")
        path = str(environ.get("PATH_INFO") or "/")
        if not policy.in_scope(method, path):
            return self.wsgi_app(environ, start_response)
        try:
            decision = self._decide(environ, method, path)
        except Exception:
            log.exception("semcache: could not plan the request; passing it through")
            decision = Bypass("error")
        if isinstance(decision, Bypass):
            return self._bypass(environ, start_response, decision)
        outcome = self.bridged.begin(decision)
        if isinstance(outcome, Replay):
            return _send(start_response, outcome)
        return self._forward(environ, start_response, outcome)

    # -- steps ---------------------------------------------------------------------

    def _decide(self, environ: Environ, method: str, path: str) -> CachePlan | Bypass:
        policy = self.bridged.policy
        headers = _headers(environ)
        early = policy.precheck(headers)
        if early is not None:  # decided on the headers: the body streams through unread
            return early
        body = _buffer_body(environ, policy.max_body_bytes)
        if body is None:
            return Bypass("body too large or incomplete")
        # The partition keeps the path as sent (WSGI servers that give it: gunicorn,
        # uWSGI, werkzeug); PATH_INFO is percent-decoded.
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        cache_request = CacheRequest(
            method=method,
            path=raw_request_path(str(raw) if raw else None, path),
            query_string=str(environ.get("QUERY_STRING") or ""),
            headers=headers,
            body=body,
        )
        if self.flask_app is None or not self.bridged.custom_extractors:
            return self.bridged.plan(cache_request, None)
        # The extractors' own request, on a copy of the body: the app's stays unread.
        own = {**environ, "wsgi.input": io.BytesIO(body)}
        with self.flask_app.request_context(own):
            native = request._get_current_object()  # type: ignore[attr-defined]
            return self.bridged.plan(cache_request, native, context=contextvars.copy_context())

    def _bypass(
        self, environ: Environ, start_response: StartResponse, why: Bypass
    ) -> Iterable[bytes]:
        log.debug("semcache: bypass %s (%s)", environ.get("PATH_INFO"), why.reason)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, marked_headers(headers, "bypass"), exc_info)

        return self.wsgi_app(environ, start)

    def _forward(
        self, environ: Environ, start_response: StartResponse, forward: Forward
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = marked_headers(headers, "miss")
            if exc_info is not None:
                forward.discard("error after start")  # the app replaced its answer
            forward.start(_status_code(status), headers)
            write = start_response(status, headers, exc_info)

            def write_copied(data: bytes) -> object:  # the legacy write() callable
                result = write(data)
                forward.add(data)
                return result

            return write_copied

        try:
            app_iter = self.wsgi_app(environ, start)
        except BaseException:
            forward.abort()
            raise
        return RecordedBody(app_iter, forward)


def _send(start_response: StartResponse, replay: Replay) -> list[bytes]:
    try:
        phrase = HTTPStatus(replay.status).phrase
    except ValueError:
        phrase = "Unknown"
    start_response(f"{replay.status} {phrase}", list(replay.headers))
    return list(replay.chunks)


def _status_code(status: str) -> int:
    try:
        return int(status.split(None, 1)[0])
    except (ValueError, IndexError):
        return 0


def _headers(environ: Environ) -> tuple[tuple[str, str], ...]:
    """Request headers from a WSGI environ: lower-case names, latin-1 values."""
    found: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            found.append((key[5:].replace("_", "-").lower(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            found.append((key.replace("_", "-").lower(), str(value)))
    return tuple(found)


def _buffer_body(environ: Environ, limit: int) -> bytes | None:
    """Read the request body (at most ``limit`` bytes) and leave it readable for the app.

    ``None`` when it is over ``limit`` or shorter than announced; the app then reads
    every byte all the same.
    """
    stream = environ.get("wsgi.input")
    raw_length = environ.get("CONTENT_LENGTH")
    if stream is None:
        return b""
    if raw_length:
        length = int(raw_length)  # checked by the policy's precheck
        data = _read(stream, length)
        environ["wsgi.input"] = io.BytesIO(data)
        return data if len(data) == length else None
    if not environ.get("wsgi.input_terminated"):
        return b""  # no Content-Length and no end marker: WSGI says there is no body
    data = _read(stream, limit + 1)
    if len(data) > limit:
        environ["wsgi.input"] = io.BufferedReader(_Prefixed(data, stream))
        return None
    environ["wsgi.input"] = io.BytesIO(data)
    return data


def _read(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(min(left, _READ_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class _Prefixed(io.RawIOBase):
    """The bytes already read, then the rest of the original stream."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(view))
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)
