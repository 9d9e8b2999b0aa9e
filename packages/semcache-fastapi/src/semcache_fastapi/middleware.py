"""`SemanticCacheMiddleware`: a pure ASGI semantic cache, streaming included.

The decision flow is the core's (:meth:`semcache.http.HttpCacheEngine.begin`); this
module only turns ASGI messages into that flow's request and response parts. Every
per-request value lives in the call's locals; the middleware instance holds only
configuration and the engine, so one instance serves any number of concurrent requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semcache.audit import Shadow
from semcache.http import (
    DEFAULT_IGNORED_FIELDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    HEADER_STATUS,
    Bypass,
    CachePlan,
    Extractor,
    Forward,
    HttpCacheEngine,
    HttpCachePolicy,
    HttpRequest,
    Replay,
    RoutePolicy,
    StoredResponse,
    marked_headers,
    raw_request_path,
)
from semcache.telemetry import (
    RequestRecord,
    TelemetrySettings,
    current,
    log_request,
    otel,
    recording,
)

if TYPE_CHECKING:
    from semcache import SemanticCache, Settings

__all__ = ["SemanticCacheMiddleware"]

log = logging.getLogger("semcache")


class SemanticCacheMiddleware:
    """Semantic cache for an ASGI app (FastAPI, Starlette, anything ASGI).

    ``app.add_middleware(SemanticCacheMiddleware, cache=SemanticCache())`` caches every
    JSON POST whose body carries a question (``query``, ``prompt``, ``input``, chat or
    Anthropic ``messages``...). Answers carry ``X-Semcache: hit|miss|bypass``; hits also
    ``X-Semcache-Similarity``.

    Options:
        cache: the :class:`semcache.SemanticCache` (one instance for the whole app).
        enabled: turn caching off (requests pass through untouched); default from
            ``cache_settings.enabled``.
        methods: request methods looked at (default POST only); others are untouched.
        path_prefix: only paths under it are looked at (default ``/``: all).
        paths: glob patterns a looked-at path must also match (``*`` matches ``/``);
            default: every path under the prefix.
        destination: where requests go, for the partition; default each request's
            ``Host`` header (the proxy passes its upstream URL, or a function of the path).
        exact_paths: glob patterns of paths cached for exact repeats only (never
            embedded), e.g. ``["*/embeddings"]``.
        routes: ordered :class:`semcache.http.RoutePolicy` items (path pattern, mode
            ``semantic``/``exact``/``off``, TTL, threshold, tenant headers and fields);
            the first matching a path decides. Default: the configuration file's.
        extract_query: ``(request, body) -> str | None``, the text to embed; ``None``
            bypasses. Default :func:`semcache.http.default_extract_query`.
        extract_model: ``(request, body) -> str | None``, the model (partition);
            default the body's ``model``.
        extract_partition: ``(request, body) -> str | None``, a tenant key computed on
            the server side (user id, organisation...), added to the partition.
        cache_settings: :class:`semcache.Settings` for the request rules and the upstream
            429 breaker (``max_body_bytes``, ``max_ttl``, ``auth_mode``, ``tenant_header``,
            ``upstream_429_threshold``, ``upstream_429_cooldown``); default the cache's.
        ignored_fields: top-level body fields left out of the partition.
        max_response_bytes: responses larger than this are passed on, not stored.

    Extractors get the Starlette :class:`~starlette.requests.Request` and the parsed JSON
    body, may be sync or async, and bypass the cache when they raise.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: SemanticCache,
        enabled: bool | None = None,
        methods: Iterable[str] = ("POST",),
        path_prefix: str = "/",
        extract_query: Extractor | None = None,
        extract_model: Extractor | None = None,
        extract_partition: Extractor | None = None,
        cache_settings: Settings | None = None,
        ignored_fields: Collection[str] = DEFAULT_IGNORED_FIELDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        paths: Collection[str] | None = None,
        destination: str | Callable[[str], str] | None = None,
        exact_paths: Collection[str] = (),
        routes: Sequence[RoutePolicy] | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        settings = cache_settings if cache_settings is not None else cache.settings
        self.policy = HttpCachePolicy(
            settings,
            enabled=enabled,
            methods=methods,
            path_prefix=path_prefix,
            extract_query=extract_query,
            extract_model=extract_model,
            extract_partition=extract_partition,
            ignored_fields=ignored_fields,
            max_response_bytes=max_response_bytes,
            paths=paths,
            destination=destination,
            exact_paths=exact_paths,
            routes=routes,
        )
        self.engine = HttpCacheEngine(cache, self.policy, settings=settings)
        self.engine.shadows = True  # audits call the wrapped app again (see _shadow)
        self._warmups: set[asyncio.Task[None]] = set()
        self.access_log = settings.group(TelemetrySettings).access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http" or not self.policy.in_scope(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if not (self.access_log or otel.live()):
            # Spans and the access log need a record per request; without either, none is kept.
            await self._handle(scope, receive, send)
            return
        record = RequestRecord(
            scope["method"], raw_request_path(scope.get("raw_path"), scope["path"])
        )
        attributes = {"http.request.method": record.method, "url.path": record.path}
        carrier = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope["headers"]
            if k.lower() in _TRACE_HEADERS
        }
        with recording(record), otel.request_span("semcache.request", attributes, carrier) as span:
            try:
                await self._handle(scope, receive, _watched(send, record))
            finally:
                record.finish()
                self._report(record, span)

    def _report(self, record: RequestRecord, span: object) -> None:
        """The request's span attributes, OpenTelemetry metrics and access log line."""
        saved = record.saved
        otel.set_attributes(
            span,
            {
                "http.response.status_code": record.status,
                "semcache.decision": record.decision,
                "semcache.bypass_reason": record.reason,
                "semcache.similarity": record.similarity,
                "semcache.source": record.source,
                "semcache.verifier.rule": record.rule,
                "semcache.entry_id": record.entry,
                "semcache.partition": record.partition,
                "semcache.tenant": record.tenant,
                "gen_ai.request.model": record.model,
                "semcache.saved.tokens": saved.tokens if saved else None,
                "semcache.saved.seconds": saved.seconds if saved else None,
                "semcache.saved.usd": saved.usd if saved else None,
            },
        )
        otel.record_request(
            record.decision,
            record.seconds or 0.0,
            record.similarity if record.decision == "hit" else None,
        )
        if self.access_log:
            log_request(record)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One looked-at request: plan it, then bypass, replay or forward."""
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
        )
        early = self.policy.precheck(headers)
        if early is not None:  # decided on headers alone: the body streams through unread
            await self._bypass(scope, receive, send, early)
            return
        body, app_receive = await _buffer_body(receive, self.policy.max_body_bytes)
        if body is None:
            await self._bypass(scope, app_receive, send, Bypass("body too large or incomplete"))
            return
        request = HttpRequest(
            method=scope["method"],
            path=raw_request_path(scope.get("raw_path"), scope["path"]),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        with otel.span("semcache.plan"):
            decision = await self.policy.plan(request, Request(scope, _body_once(body)))
        if isinstance(decision, Bypass):
            await self._bypass(scope, app_receive, send, decision)
            return
        await self._cached(scope, app_receive, send, decision, body)

    # -- paths through the middleware --------------------------------------------

    async def _bypass(self, scope: Scope, receive: Receive, send: Send, why: Bypass) -> None:
        log.debug("semcache: bypass %s %s (%s)", scope["method"], scope["path"], why.reason)
        record = current()
        if record is not None:
            record.reason = why.reason

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _marked(message, "bypass")
            await send(message)

        await self.app(scope, receive, send_marked)

    async def _cached(
        self, scope: Scope, receive: Receive, send: Send, plan: CachePlan, body: bytes
    ) -> None:
        record = current()
        if record is not None:
            record.partition = plan.partition
            record.tenant = plan.tenant
            model = plan.metadata.get("model")
            record.model = model if isinstance(model, str) else None
        outcome = await self.engine.begin(plan)
        if isinstance(outcome, Replay):
            await _send_replay(send, outcome)
            if outcome.audit is not None:  # only now: an audit never delays the answer
                self.engine.audit(outcome.audit, self._shadow(scope, body))
            return
        await self._forward(scope, receive, send, outcome)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, forward: Forward) -> None:
        """Call the app, passing every message on at once while ``forward`` keeps a copy."""
        final_sent = False

        async def receive_watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not final_sent:
                forward.discard("client disconnected")
            return message

        async def send_copied(message: Message) -> None:
            nonlocal final_sent
            kind = message["type"]
            if kind == "http.response.start":
                message = _marked(message, "miss")
                forward.start(message.get("status", 0), _str_headers(message))
                if message.get("trailers"):
                    forward.discard("trailers")
                await send(message)
            elif kind == "http.response.body":
                more = bool(message.get("more_body", False))
                forward.add(message.get("body", b""))  # a copy: costs the client nothing
                if not more:
                    final_sent = True
                    # The answer is complete: store it and let the requests waiting on
                    # this one in now, not after this client has read the last chunk.
                    forward.finish()
                await send(message)
            else:
                forward.discard(f"message {kind}")
                await send(message)

        try:
            with otel.span("semcache.forward"):
                await self.app(scope, receive_watched, send_copied)
        finally:
            forward.abort()  # nothing when the answer was finished
            # Wait for the write (the response is already sent), so it is not lost when
            # the server shuts down right after; shielded against cancellation.
            await forward.settled()

    def _shadow(self, scope: Scope, body: bytes) -> Shadow:
        """The audited request sent to the app once more (the proxy's app forwards it
        upstream): its answer recorded, never stored, never passed to a client."""

        async def call() -> StoredResponse | None:
            recorder = self.engine.recorder()
            delivered = asyncio.Event()

            async def receive() -> Message:
                if not delivered.is_set():
                    delivered.set()
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.Event().wait()  # no disconnect: the app is cancelled with us
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    recorder.start(message.get("status", 0), _str_headers(message, lower=True))
                elif message["type"] == "http.response.body":
                    recorder.add(message.get("body", b""))

            await self.app(dict(scope), receive, send)
            return recorder.finish()

        return call

    # -- helpers -----------------------------------------------------------------

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self.policy.enabled:
                # Load the model and open the stores while the app starts: "startup
                # complete" then means the first repeated question is a hit. Past
                # start_timeout (or with 0) the loading goes on in the background.
                task = asyncio.get_running_loop().create_task(self._warm_up())
                self._warmups.add(task)
                task.add_done_callback(self._warmups.discard)
                wait = self.policy.settings.start_timeout
                if wait > 0:
                    _, pending = await asyncio.wait({task}, timeout=wait)
                    if pending:
                        log.warning(
                            "semcache: the cache is not ready after %.0fs; the app starts "
                            "and the cache keeps loading",
                            wait,
                        )
            elif message["type"] == "lifespan.shutdown":
                await self.engine.drain(self.policy.settings.lookup_timeout_ms / 1000 + 1.0)
                # The app owns the cache; its files are written before the process exits.
                persist = getattr(self.cache, "persist", None)
                if persist is not None:
                    await persist()
            return message

        return wrapped

    async def _warm_up(self) -> None:
        start = getattr(self.cache, "start", None)
        if start is None:
            return
        try:
            await start()
        except Exception:
            log.exception("semcache: the cache could not start; requests pass through uncached")


_STATUS = HEADER_STATUS.encode("latin-1")
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
"""The W3C trace context headers a caller's trace continues from."""


def _watched(send: Send, record: RequestRecord) -> Send:
    """``send`` noting the status, the ``X-Semcache`` decision and the time to the last
    byte in ``record``."""

    async def watched(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            record.status = message.get("status")
            for name, value in message.get("headers", ()):
                if name.lower() == _STATUS:
                    record.decision = value.decode("latin-1")
        await send(message)
        if kind == "http.response.body" and not message.get("more_body", False):
            record.finish()  # the latency the client saw, not the store that follows

    return watched


def _str_headers(message: Message, *, lower: bool = False) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1").lower() if lower else k.decode("latin-1"), v.decode("latin-1"))
        for k, v in message.get("headers", [])
    ]


def _marked(message: Message, status: str) -> Message:
    """The start message with our ``X-Semcache`` header (replacing any from further in)."""
    headers = marked_headers(_str_headers(message), status)
    return {**message, "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]}


async def _send_replay(send: Send, replay: Replay) -> None:
    """Send a stored answer (or the breaker's 503) as ASGI messages."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in replay.headers]
    await send({"type": "http.response.start", "status": replay.status, "headers": headers})
    last = len(replay.chunks) - 1
    for index, chunk in enumerate(replay.chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": index < last})


async def _buffer_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the request body (up to ``limit`` bytes) and a ``receive`` that replays it.

    The replaying ``receive`` hands the app what was read, then the server's own
    messages, so ``http.disconnect`` still reaches the app. ``None`` instead of the
    body when it is over ``limit`` or the client left while sending it; the app then
    gets every byte all the same.
    """
    messages: list[Message] = []
    size = 0
    complete = False
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            break
        if not message.get("more_body", False):
            complete = True
            break
    if complete:
        body = b"".join(m.get("body", b"") for m in messages)
        messages = [{"type": "http.request", "body": body, "more_body": False}]
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    if not complete:
        return None, replay
    return messages[0]["body"], replay


def _body_once(body: bytes) -> Receive:
    """A ``receive`` for the extractors' Request: the buffered body, never the app's stream."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
