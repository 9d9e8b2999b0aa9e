"""`SemanticCacheMiddleware`: a pure ASGI semantic cache, streaming included.

Every per-request value lives in the call (locals and a per-request `_Exchange`);
the middleware instance only holds configuration, the 429 breaker and references to
pending store tasks, so one instance serves any number of concurrent requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semcache.http import (
    DEFAULT_IGNORED_FIELDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    HEADER_SIMILARITY,
    HEADER_STATUS,
    Bypass,
    CachedAnswer,
    CachePlan,
    Extractor,
    FlightTicket,
    HttpCacheEngine,
    HttpCachePolicy,
    HttpRequest,
    ResponseRecorder,
    StoredResponse,
    UpstreamBreaker,
)

if TYPE_CHECKING:
    from semcache import SemanticCache, Settings

__all__ = ["SemanticCacheMiddleware"]

log = logging.getLogger("semcache")

_OWN_HEADERS = (HEADER_STATUS.encode(), HEADER_SIMILARITY.encode(), b"x-semcache-entry")


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
        )
        self.engine = HttpCacheEngine(cache, self.policy, settings=settings)
        # Strong references: a store outlives the request that scheduled it.
        self._stores: set[asyncio.Task[None]] = set()
        self._warmups: set[asyncio.Task[None]] = set()

    @property
    def breaker(self) -> UpstreamBreaker:
        """The upstream 429 breaker."""
        return self.engine.breaker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http" or not self.policy.in_scope(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return

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
            path=scope["path"],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        decision = await self.policy.plan(request, Request(scope, _body_once(body)))
        if isinstance(decision, Bypass):
            await self._bypass(scope, app_receive, send, decision)
            return
        await self._cached(scope, app_receive, send, decision)

    # -- paths through the middleware --------------------------------------------

    async def _bypass(self, scope: Scope, receive: Receive, send: Send, why: Bypass) -> None:
        log.debug("semcache: bypass %s %s (%s)", scope["method"], scope["path"], why.reason)

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._record_upstream(message.get("status", 0))
                message = _with_status(message, b"bypass")
            await send(message)

        await self.app(scope, receive, send_marked)

    async def _cached(self, scope: Scope, receive: Receive, send: Send, plan: CachePlan) -> None:
        engine = self.engine
        if plan.lookup:
            answer = await engine.lookup(plan)
            if answer is not None and await _replay(send, answer):
                return
        if engine.breaker.is_open():
            await _reject(send, engine)
            return
        if not plan.lookup:  # a refresh is the client's explicit wish: never collapsed
            await self._forward(scope, receive, send, plan, None)
            return
        ticket: FlightTicket | None = await engine.join_flight(plan)
        if ticket is not None and not ticket.leader:
            answer = await engine.lookup(plan)
            if answer is not None and await _replay(send, answer):
                return
            if engine.breaker.is_open():
                await _reject(send, engine)
                return
            ticket = None  # the leader's answer was not stored: ask the app ourselves
        await self._forward(scope, receive, send, plan, ticket)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        plan: CachePlan,
        ticket: FlightTicket | None,
    ) -> None:
        """Call the app, passing every message on at once while keeping a copy to store."""
        exchange = _Exchange(self.engine.recorder() if plan.store else None)

        async def receive_watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not exchange.final_sent:
                exchange.abandoned = True
            return message

        async def send_copied(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self._record_upstream(message.get("status", 0))
                message = _with_status(message, b"miss")
                exchange.started(message)
                await send(message)
            elif kind == "http.response.body":
                more = bool(message.get("more_body", False))
                if not more:
                    exchange.final_sent = True
                await send(message)  # the client first: time to first byte is the app's
                exchange.chunk(message.get("body", b""))
                if not more:
                    stored = exchange.finish()
                    if stored is not None:
                        exchange.store_task = self._spawn_store(plan, stored, ticket)
                    elif ticket is not None:
                        await ticket.release()
            else:
                exchange.abort(f"message {kind}")
                await send(message)

        try:
            await self.app(scope, receive_watched, send_copied)
        finally:
            if exchange.store_task is not None:
                # Wait for the write (the response is already sent), so it is not lost
                # when the server shuts down right after; shielded against cancellation.
                await asyncio.shield(exchange.store_task)
            elif ticket is not None:
                await ticket.release()

    # -- helpers -----------------------------------------------------------------

    def _spawn_store(
        self, plan: CachePlan, stored: StoredResponse, ticket: FlightTicket | None
    ) -> asyncio.Task[None]:
        async def store() -> None:
            try:
                await self.engine.store(plan, stored)
            finally:
                if ticket is not None:
                    await ticket.release()

        task = asyncio.get_running_loop().create_task(store())
        self._stores.add(task)
        task.add_done_callback(self._stores.discard)
        return task

    def _record_upstream(self, status: int) -> None:
        try:
            self.engine.breaker.record(int(status))
        except Exception:
            log.exception("semcache: 429 breaker failed")

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self.policy.enabled:
                # Load the embedder while the app starts, without delaying startup.
                task = asyncio.get_running_loop().create_task(self._warm_up())
                self._warmups.add(task)
                task.add_done_callback(self._warmups.discard)
            elif message["type"] == "lifespan.shutdown" and self._stores:
                budget = self.policy.settings.lookup_timeout_ms / 1000 + 1.0
                await asyncio.wait(set(self._stores), timeout=budget)
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


class _Exchange:
    """State of one forwarded request (created per request, never shared)."""

    __slots__ = ("abandoned", "final_sent", "recorder", "store_task")

    def __init__(self, recorder: ResponseRecorder | None) -> None:
        self.recorder = recorder
        self.final_sent = False
        self.abandoned = False
        self.store_task: asyncio.Task[None] | None = None

    def started(self, message: Message) -> None:
        if self.recorder is None:
            return
        try:
            headers = [
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in message.get("headers", [])
            ]
            self.recorder.start(int(message["status"]), headers)
            if message.get("trailers"):
                self.recorder.abort("trailers")
        except Exception:
            log.exception("semcache: could not record the response; it will not be stored")
            self.recorder = None

    def chunk(self, body: bytes) -> None:
        if self.recorder is not None:
            self.recorder.add(body)

    def abort(self, reason: str) -> None:
        if self.recorder is not None:
            self.recorder.abort(reason)

    def finish(self) -> StoredResponse | None:
        if self.recorder is None or self.abandoned:
            return None
        try:
            return self.recorder.finish()
        except Exception:
            log.exception("semcache: could not record the response; it will not be stored")
            return None


def _with_status(message: Message, status: bytes) -> Message:
    """The start message with our ``X-Semcache`` header (replacing any from further in)."""
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OWN_HEADERS]
    headers.append((HEADER_STATUS.encode(), status))
    return {**message, "headers": headers}


async def _replay(send: Send, answer: CachedAnswer) -> bool:
    """Send a stored answer; False (nothing sent) when it cannot be turned into messages."""
    stored = answer.response
    try:
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in stored.replay_headers(
                similarity=answer.similarity, entry_id=answer.entry_id
            )
        ]
        chunks = stored.chunks()
    except Exception:
        log.exception("semcache: unusable cache entry; treating as a miss")
        return False
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": index < last})
    return True


async def _reject(send: Send, engine: HttpCacheEngine) -> None:
    status, headers, body = engine.breaker.rejection()
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


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
