"""`SemanticCacheMiddleware`: a semantic cache for Django, sync and async.

The request rules, the lookup, the single flight and the stores are those of
:mod:`semcache.http`, reached through :class:`~semcache.http.BridgedEngine`: the cache
runs on the process's semcache loop thread, whether Django serves the request
through WSGI (sync path) or ASGI (async path).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from semcache import SettingsError
from semcache.http import (
    HEADER_STATUS,
    OWN_HEADERS,
    BridgedEngine,
    Bypass,
    CachePlan,
    Forward,
    RecordedBody,
    Replay,
    raw_request_path,
    recorded_async,
)
from semcache.http import HttpRequest as CacheRequest
from semcache_django.ordering import private_reason, warn_once

__all__ = ["SETTING", "SemanticCacheMiddleware"]

log = logging.getLogger("semcache")

SETTING = "SEMCACHE"
"""The Django setting holding the configuration mapping."""

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class SemanticCacheMiddleware:
    """Semantic cache for a Django project, configured by the ``SEMCACHE`` setting.

    Add ``"semcache_django.SemanticCacheMiddleware"`` to ``MIDDLEWARE``, above
    ``SessionMiddleware``, ``CsrfViewMiddleware``, ``AuthenticationMiddleware``,
    ``MessageMiddleware`` and ``LocaleMiddleware`` (a misplacement is logged once,
    when Django builds its middleware). An answer that read the session, handed out
    a CSRF token, used messages or says ``Vary: Cookie`` is never stored. Every JSON
    POST whose body carries a question (``query``, ``prompt``, ``input``, chat or
    Anthropic ``messages``...) is looked up; answers carry ``X-Semcache:
    hit|miss|bypass`` and hits ``X-Semcache-Similarity``. Works with sync and async
    views, under WSGI and ASGI; streamed answers pass through chunk by chunk.

    ``SEMCACHE`` (optional) is a dict of :class:`semcache.Settings` fields, which
    override the ``SEMANTIC_CACHE_*`` environment, and of these options:

    - ``cache``: a :class:`semcache.SemanticCache`, a function returning one, or the
      dotted path of either; default: one cache per process built from the settings.
    - ``methods``, ``path_prefix``: the requests looked at (default: POST, all paths).
    - ``extract_query``, ``extract_model``, ``extract_partition``: callables (or
      dotted paths) ``(request, body) -> str | None`` given the Django request and
      the parsed JSON body. Sync ones run in the request's thread (the ORM works
      under WSGI); async ones run on the semcache loop, or under ASGI on the
      request's loop (use ``await request.auser()`` there, not the sync ORM).
    - ``ignored_fields``, ``max_response_bytes``: as for the ASGI middleware.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        warn_once(getattr(django_settings, "MIDDLEWARE", ()), type(self))
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        config = getattr(django_settings, SETTING, None) or {}
        if not isinstance(config, Mapping):
            raise ImproperlyConfigured(f"{SETTING} must be a dict")
        try:
            self.bridged = BridgedEngine.from_config(config)
        except SettingsError as exc:
            raise ImproperlyConfigured(f"{SETTING}: {exc}") from exc
        # Django builds its middleware when the app starts: load the model now.
        if self.bridged.policy.enabled:
            self.bridged.warm_up()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        get_response = cast(GetResponse, self.get_response)
        prepared = self._prepare(request)
        if prepared is None:
            return get_response(request)
        decision: CachePlan | Bypass = (
            self.bridged.plan(prepared, request) if isinstance(prepared, CacheRequest) else prepared
        )
        if isinstance(decision, Bypass):
            return self._bypassed(get_response(request), decision)
        outcome = self.bridged.begin(decision)
        if isinstance(outcome, Replay):
            return _replayed(outcome, asynchronous=False)
        try:
            response = get_response(request)
        except BaseException:
            outcome.abort()
            raise
        return _forwarded(request, response, outcome)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response = cast(AsyncGetResponse, self.get_response)
        prepared = self._prepare(request)
        if prepared is None:
            return await get_response(request)
        decision: CachePlan | Bypass = (
            # On this loop: async extractors can use the request's async APIs.
            await self.bridged.aplan(prepared, request)
            if isinstance(prepared, CacheRequest)
            else prepared
        )
        if isinstance(decision, Bypass):
            return self._bypassed(await get_response(request), decision)
        outcome = await self.bridged.abegin(decision)
        if isinstance(outcome, Replay):
            return _replayed(outcome, asynchronous=True)
        try:
            response = await get_response(request)
        except BaseException:
            outcome.abort()
            raise
        return _forwarded(request, response, outcome)

    # -- steps ---------------------------------------------------------------------

    def _prepare(self, request: HttpRequest) -> CacheRequest | Bypass | None:
        """The request as the policy sees it, a reason to bypass, or None (not ours)."""
        policy = self.bridged.policy
        method = request.method or "GET"
        path = request.path_info
        if not policy.in_scope(method, path):
            return None
        headers = tuple((name.lower(), value) for name, value in request.headers.items())
        early = policy.precheck(headers)
        if early is not None:  # decided on the headers: the body is left unread
            return early
        try:
            body = request.body
        except Exception as exc:  # too large for Django, or the client went away
            log.debug("semcache: request body unreadable (%s); passing through", exc)
            return Bypass("body unreadable")
        return CacheRequest(
            method=method,
            path=raw_request_path(_raw_path(request), path),
            query_string=request.META.get("QUERY_STRING", ""),
            headers=headers,
            body=body,
        )

    def _bypassed(self, response: HttpResponseBase, why: Bypass) -> HttpResponseBase:
        log.debug("semcache: bypass (%s)", why.reason)
        _mark(response, "bypass")
        return response


def _raw_path(request: HttpRequest) -> bytes | str | None:
    """The path as sent: ASGI ``raw_path``, else the WSGI server's ``RAW_URI`` or
    ``REQUEST_URI`` (gunicorn, uWSGI, werkzeug); None when the server gives neither."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and scope.get("raw_path"):
        raw: bytes = scope["raw_path"]
        return raw
    raw_uri = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    return str(raw_uri) if raw_uri else None


def _mark(response: HttpResponseBase, status: str) -> None:
    for name in OWN_HEADERS:
        if name in response.headers:
            del response.headers[name]
    response.headers[HEADER_STATUS] = status


def _wire_headers(response: HttpResponseBase) -> list[tuple[str, str]]:
    """The headers as Django will send them, cookies included."""
    headers = [(name.lower(), value) for name, value in response.items()]
    headers += [("set-cookie", c.output(header="").strip()) for c in response.cookies.values()]
    return headers


def _forwarded(
    request: HttpRequest, response: HttpResponseBase, forward: Forward
) -> HttpResponseBase:
    """Mark the app's answer a miss and keep a copy of it while it is sent (stored
    unless it belongs to this visitor only: see :func:`private_reason`)."""
    try:
        _mark(response, "miss")
        forward.start(response.status_code, _wire_headers(response))
        private = private_reason(request, response)
        if private is not None:
            log.debug("semcache: not stored (%s)", private)
            forward.discard(private)
        if isinstance(response, StreamingHttpResponse):
            if response.is_async:
                response.streaming_content = recorded_async(response.streaming_content, forward)
            else:
                response.streaming_content = RecordedBody(response.streaming_content, forward)
        elif isinstance(response, HttpResponse):
            forward.add(response.content)
            forward.finish()
        else:  # some other kind of response: passed on, not stored
            forward.abort()
    except Exception:
        log.exception("semcache: could not record the response; it will not be stored")
        forward.abort()
    return response


def _replayed(replay: Replay, *, asynchronous: bool) -> HttpResponseBase:
    """A Django response for a stored answer (or the breaker's rejection)."""
    response: HttpResponseBase
    if replay.streamed:
        chunks = replay.chunks
        content: Any = _achunks(chunks) if asynchronous else iter(chunks)
        response = StreamingHttpResponse(content, status=replay.status)
    else:
        response = HttpResponse(replay.body, status=replay.status)
    del response.headers["Content-Type"]  # Django's default; the stored one follows
    merged: dict[str, str] = {}
    for name, value in replay.headers:
        # One value per name in Django: repeated headers become one list, as HTTP allows.
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    for name, value in merged.items():
        response.headers[name] = value
    return response


async def _achunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
