"""The transports' implementation, for any httpx-compatible module (``httpx``, ``httpx2``).

The decision flow is the core's (:meth:`semcache.http.HttpCacheEngine.begin`); this
module only turns a client's request into that flow's request and the wrapped
transport's response into its response parts, exactly as the ASGI middleware does with
ASGI messages. The async transport runs the engine on the caller's event loop; the sync
one reaches it through the process's loop thread (:class:`semcache.http.BridgedEngine`),
as the Django and Flask adapters do. The public classes bind it to one module:
:mod:`semcache_httpx.transport` (``httpx``) and :mod:`semcache_httpx.httpx2`.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from semcache.http import (
    DEFAULT_IGNORED_FIELDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    GENERATION_PATHS,
    BridgedEngine,
    Bypass,
    CachePlan,
    Extractor,
    Forward,
    HttpCacheEngine,
    HttpCachePolicy,
    HttpRequest,
    Replay,
    marked_headers,
)

if TYPE_CHECKING:
    from semcache import SemanticCache, Settings

__all__ = ["AsyncTransportBase", "SyncTransportBase", "destination_of", "make_client"]

log = logging.getLogger("semcache")

# httpx.Client options that configure its transport: with a transport of our own httpx
# would ignore them, so the helpers hand them to the wrapped transport.
_TRANSPORT_OPTIONS = ("verify", "cert", "trust_env", "http1", "http2", "limits", "proxy")


def destination_of(url: Any, upstreams: Sequence[str] = ()) -> tuple[str, str]:
    """``(destination, path)`` of a request URL, for the partition.

    The destination is the longest of ``upstreams`` (base URLs, as a reverse proxy is
    given them, trailing ``/`` dropped) the URL lies under, the path what follows it;
    otherwise ``scheme://host[:port]`` (host in lower case, no default port) and the
    whole path. A proxy started with ``--upstream U`` puts ``U`` (less a trailing ``/``)
    and the path it was asked for in the partition: a direct request to ``U + path``
    gets the same pair, so both share entries.
    """
    if isinstance(url, str):
        url = httpx.URL(url)  # else an httpx or httpx2 URL: the same attributes
    path = url.raw_path.decode("ascii").split("?", 1)[0] or "/"
    origin = _origin(url)
    best: tuple[str, str] | None = None
    for upstream in upstreams:
        text = upstream.rstrip("/")
        base = httpx.URL(text)
        if _origin(base) != origin:
            continue
        prefix = base.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            continue
        if best is None or len(prefix) > len(best[1]):
            best = (text, prefix)
    if best is None:
        return origin, path
    return best[0], path[len(best[1]) :] or "/"


def _origin(url: Any) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _str_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


class _Rules:
    """What both transports share: scope, the request as the policy sees it, responses."""

    def __init__(self, policy: HttpCachePolicy, upstreams: Iterable[str], hx: Any) -> None:
        self.policy = policy
        self.hx = hx
        self.streams = _streams(hx)
        self.upstreams = tuple(upstreams)
        for upstream in self.upstreams:
            base = httpx.URL(upstream)
            if not base.scheme or not base.host:
                raise ValueError(f"upstreams: not an absolute URL: {upstream!r}")

    def in_scope(self, request: Any) -> tuple[str, str] | None:
        """``(destination, path)`` when the cache looks at ``request`` at all."""
        try:
            destination, path = destination_of(request.url, self.upstreams)
        except Exception:  # an odd URL is the upstream's business, not the cache's
            log.exception("semcache: unreadable request URL; passing the request through")
            return None
        if not self.policy.in_scope(request.method, path):
            return None
        return destination, path

    @staticmethod
    def headers(request: Any) -> tuple[tuple[str, str], ...]:
        return tuple((k.lower(), v) for k, v in _str_headers(request.headers.raw))

    @staticmethod
    def http_request(
        request: Any,
        where: tuple[str, str],
        headers: tuple[tuple[str, str], ...],
        body: bytes,
    ) -> HttpRequest:
        return HttpRequest(
            method=request.method,
            path=where[1],
            query_string=request.url.query.decode("latin-1"),
            headers=headers,
            body=body,
            destination=where[0],
        )

    @staticmethod
    def has_length(headers: Sequence[tuple[str, str]]) -> bool:
        # A body without Content-Length is streamed by httpx (a generator, a file): it
        # is sent as it is, never buffered here.
        return any(k == "content-length" for k, _ in headers)

    def marked(self, response: Any, status: str, stream: Any = None) -> Any:
        headers = marked_headers(_str_headers(response.headers.raw), status)
        return self.hx.Response(
            response.status_code,
            headers=headers,
            stream=stream if stream is not None else response.stream,
            extensions=response.extensions,
        )

    def replayed(self, replay: Replay) -> Any:
        return self.hx.Response(
            replay.status,
            headers=replay.headers,
            stream=self.streams.replay(replay.chunks),
            extensions={"http_version": b"HTTP/1.1"},
        )


class _ReplayStream:
    """A stored answer's chunks (SSE events stay whole, as the upstream sent them)."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class SyncTransportBase:
    """The sync transport; a subclass binds it to a module (``_hx``) and its base transport."""

    _hx: ClassVar[Any] = httpx

    def __init__(
        self,
        cache: SemanticCache,
        transport: Any = None,
        *,
        upstreams: Iterable[str] = (),
        paths: Collection[str] | None = GENERATION_PATHS,
        methods: Iterable[str] = ("POST",),
        extract_query: Extractor | None = None,
        extract_model: Extractor | None = None,
        extract_partition: Extractor | None = None,
        cache_settings: Settings | None = None,
        ignored_fields: Collection[str] = DEFAULT_IGNORED_FIELDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.transport = transport if transport is not None else self._hx.HTTPTransport()
        self.bridge = BridgedEngine(
            cache=cache,
            settings=cache_settings if cache_settings is not None else cache.settings,
            methods=methods,
            extract_query=extract_query,
            extract_model=extract_model,
            extract_partition=extract_partition,
            ignored_fields=ignored_fields,
            max_response_bytes=max_response_bytes,
            paths=paths,
        )
        self._rules = _Rules(self.bridge.policy, upstreams, self._hx)

    @property
    def cache(self) -> SemanticCache:
        return self.bridge.cache

    def handle_request(self, request: Any) -> Any:
        where = self._rules.in_scope(request)
        if where is None:
            return self.transport.handle_request(request)
        headers = self._rules.headers(request)
        early = self.bridge.policy.precheck(headers)
        if early is not None:
            return self._bypass(request, early)
        if not self._rules.has_length(headers):
            return self._bypass(request, Bypass("streamed request body"))
        body = request.read()
        decision = self.bridge.plan(
            self._rules.http_request(request, where, headers, body), request
        )
        if isinstance(decision, Bypass):
            return self._bypass(request, decision)
        outcome = self.bridge.begin(decision)
        if isinstance(outcome, Replay):
            return self._rules.replayed(outcome)
        return self._forward(request, outcome)

    def _bypass(self, request: Any, why: Bypass) -> Any:
        log.debug("semcache: bypass %s %s (%s)", request.method, request.url, why.reason)
        return self._rules.marked(self.transport.handle_request(request), "bypass")

    def _forward(self, request: Any, forward: Forward) -> Any:
        try:
            response = self.transport.handle_request(request)
        except BaseException:
            forward.abort()
            raise
        forward.start(response.status_code, _str_headers(response.headers.raw))
        recorded = self._rules.streams.recorded(
            response.stream, forward, self.bridge, response.headers
        )
        return self._rules.marked(response, "miss", recorded)

    def close(self) -> None:
        self.transport.close()


class _RecordedStream:
    """The wrapped transport's body, passed on chunk by chunk while ``forward`` keeps a copy.

    Once the last chunk is read the answer is stored before the read returns (within the
    cache's time budget), so the next request sees it; a body not read to its end, or
    broken, stores nothing. One exception: a client that stops reading right after an
    OpenAI stream's ``data: [DONE]`` event (the OpenAI SDK does) has had the whole
    answer; the rest of the body (normally nothing) is read when it closes the response,
    and the answer is stored if the body then ends.
    """

    def __init__(self, source: Any, forward: Forward, bridge: BridgedEngine, headers: Any) -> None:
        self._source = source
        self._forward = forward
        self._bridge = bridge
        self._iterator: Iterator[bytes] | None = None
        self._tail = _Tail(headers)
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = iter(self._source)
        try:
            for chunk in self._iterator:
                self._forward.add(chunk)
                self._tail.add(chunk)
                yield chunk
        except BaseException:
            self._forward.abort()
            raise
        self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        budget = self._bridge.settings.lookup_timeout_ms / 1000 + 1.0
        try:
            self._bridge.loop_thread.run(_finish_and_settle(self._forward), budget)
        except TimeoutError:
            log.warning("semcache: the answer is still being stored after %.1fs", budget)
        except Exception:
            log.exception("semcache: could not store the answer")
            self._forward.abort()

    def _drain(self) -> None:
        if self._ended or self._iterator is None or not self._tail.terminal:
            return
        left = _DRAIN_LIMIT
        try:
            for chunk in self._iterator:
                left -= len(chunk)
                if left < 0:
                    return
                self._forward.add(chunk)
        except Exception:
            return
        self._end()

    def close(self) -> None:
        try:
            self._drain()
        finally:
            try:
                self._source.close()
            finally:
                self._forward.abort()  # nothing when the answer was finished


async def _finish_and_settle(forward: Forward) -> None:
    # On the engine's loop, so the store is a task of that loop and can be awaited.
    forward.finish()
    await forward.settled()


class AsyncTransportBase:
    """The async transport; a subclass binds it to a module (``_hx``) and its base transport."""

    _hx: ClassVar[Any] = httpx

    def __init__(
        self,
        cache: SemanticCache,
        transport: Any = None,
        *,
        upstreams: Iterable[str] = (),
        paths: Collection[str] | None = GENERATION_PATHS,
        methods: Iterable[str] = ("POST",),
        extract_query: Extractor | None = None,
        extract_model: Extractor | None = None,
        extract_partition: Extractor | None = None,
        cache_settings: Settings | None = None,
        ignored_fields: Collection[str] = DEFAULT_IGNORED_FIELDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.transport = transport if transport is not None else self._hx.AsyncHTTPTransport()
        self.cache = cache
        settings = cache_settings if cache_settings is not None else cache.settings
        self.policy = HttpCachePolicy(
            settings,
            methods=methods,
            extract_query=extract_query,
            extract_model=extract_model,
            extract_partition=extract_partition,
            ignored_fields=ignored_fields,
            max_response_bytes=max_response_bytes,
            paths=paths,
        )
        self.engine = HttpCacheEngine(cache, self.policy, settings=settings)
        self._rules = _Rules(self.policy, upstreams, self._hx)

    async def handle_async_request(self, request: Any) -> Any:
        where = self._rules.in_scope(request)
        if where is None:
            return await self.transport.handle_async_request(request)
        headers = self._rules.headers(request)
        early = self.policy.precheck(headers)
        if early is not None:
            return await self._bypass(request, early)
        if not self._rules.has_length(headers):
            return await self._bypass(request, Bypass("streamed request body"))
        body = await request.aread()
        decision = await self.policy.plan(
            self._rules.http_request(request, where, headers, body), request
        )
        if isinstance(decision, Bypass):
            return await self._bypass(request, decision)
        outcome = await self._begin(decision)
        if isinstance(outcome, Replay):
            return self._rules.replayed(outcome)
        return await self._forward(request, outcome)

    async def _begin(self, plan: CachePlan) -> Replay | Forward:
        # A request that arrives while the model loads waits for it (start_timeout)
        # rather than passing through uncached and unstored.
        wait = self.engine.settings.start_timeout
        if wait > 0 and not getattr(self.cache, "started", True):
            try:
                await self.cache.ready(wait)
            except Exception:
                log.exception("semcache: the cache could not start")
        return await self.engine.begin(plan)

    async def _bypass(self, request: Any, why: Bypass) -> Any:
        log.debug("semcache: bypass %s %s (%s)", request.method, request.url, why.reason)
        return self._rules.marked(await self.transport.handle_async_request(request), "bypass")

    async def _forward(self, request: Any, forward: Forward) -> Any:
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException:
            forward.abort()
            raise
        forward.start(response.status_code, _str_headers(response.headers.raw))
        recorded = self._rules.streams.arecorded(response.stream, forward, response.headers)
        return self._rules.marked(response, "miss", recorded)

    async def aclose(self) -> None:
        await self.transport.aclose()


class _AsyncRecordedStream:
    """:class:`_RecordedStream` for async clients (the store is awaited on the caller's loop).

    Iterating it again continues where the last iteration stopped (the async OpenAI
    SDK drains the rest of a stream that way after ``data: [DONE]``).
    """

    def __init__(self, source: Any, forward: Forward, headers: Any) -> None:
        self._source = source
        self._forward = forward
        self._iterator: AsyncIterator[bytes] | None = None
        self._tail = _Tail(headers)
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterator is None:
            self._iterator = self._source.__aiter__()
        try:
            async for chunk in self._iterator:
                self._forward.add(chunk)
                self._tail.add(chunk)
                yield chunk
        except BaseException:
            self._forward.abort()
            raise
        await self._end()

    async def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._forward.finish()
        # Shielded: a caller cancelled now still keeps the write.
        await self._forward.settled()

    async def _drain(self) -> None:
        if self._ended or self._iterator is None or not self._tail.terminal:
            return
        left = _DRAIN_LIMIT
        try:
            async for chunk in self._iterator:
                left -= len(chunk)
                if left < 0:
                    return
                self._forward.add(chunk)
        except Exception:
            return
        await self._end()

    async def aclose(self) -> None:
        try:
            await self._drain()
        finally:
            try:
                await self._source.aclose()
            finally:
                self._forward.abort()  # nothing when the answer was finished


_DRAIN_LIMIT = 64 * 1024
_TERMINAL = re.compile(rb"(?:^|\n)data: ?\[DONE\]\r?\n\r?\n\Z")


class _Tail:
    """The last bytes of a body: did it stop right after an OpenAI ``data: [DONE]``?

    A gzip or deflate body is looked at decompressed (a copy, as it passes); in another
    coding the end is not recognised, and the client must read the body to its end.
    """

    __slots__ = ("_bytes", "_inflate")

    def __init__(self, headers: Any) -> None:
        self._bytes = b""
        coding = (headers.get("content-encoding") or "identity").strip().lower()
        self._inflate: Any = None
        if coding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header
        elif coding != "identity":
            self._bytes = b"\x00"  # never terminal: nothing below is looked at
            self._inflate = False

    def add(self, chunk: bytes) -> None:
        if self._inflate is False:
            return
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk)
            except zlib.error:
                self._inflate, self._bytes = False, b""
                return
        self._bytes = (self._bytes + chunk[-64:])[-64:]

    @property
    def terminal(self) -> bool:
        return self._inflate is not False and _TERMINAL.search(self._bytes) is not None


def _split(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The wrapped transport's options among ``kwargs`` (removed from it)."""
    options = {k: kwargs.pop(k) for k in _TRANSPORT_OPTIONS if k in kwargs}
    if "trust_env" in options:
        kwargs["trust_env"] = options["trust_env"]  # the client reads it too (.netrc)
    return options


def _client_defaults(hx: Any, kwargs: dict[str, Any]) -> None:
    # The SDKs' own defaults: long generations, redirects followed.
    kwargs.setdefault("timeout", hx.Timeout(600.0, connect=5.0))
    kwargs.setdefault("follow_redirects", True)


def make_client(
    transport_class: Any,
    cache: SemanticCache,
    transport: Any,
    cache_options: dict[str, Any] | None,
    client_options: dict[str, Any],
) -> Any:
    """A client of ``transport_class``'s module with that transport in front of ``transport``."""
    hx = transport_class._hx
    is_async = issubclass(transport_class, AsyncTransportBase)
    options = _split(client_options)
    if transport is None:
        transport = hx.AsyncHTTPTransport(**options) if is_async else hx.HTTPTransport(**options)
    _client_defaults(hx, client_options)
    client_class = hx.AsyncClient if is_async else hx.Client
    return client_class(
        transport=transport_class(cache, transport, **(cache_options or {})), **client_options
    )


class _Streams:
    """The stream classes of one module: each is a subclass of its byte-stream base."""

    def __init__(self, hx: Any) -> None:
        both = (hx.SyncByteStream, hx.AsyncByteStream)
        self.replay: Any = type("ReplayStream", (_ReplayStream, *both), {})
        self.recorded: Any = type("RecordedStream", (_RecordedStream, hx.SyncByteStream), {})
        self.arecorded: Any = type(
            "AsyncRecordedStream", (_AsyncRecordedStream, hx.AsyncByteStream), {}
        )


_STREAMS: dict[str, _Streams] = {}


def _streams(hx: Any) -> _Streams:
    found = _STREAMS.get(hx.__name__)
    if found is None:
        found = _STREAMS[hx.__name__] = _Streams(hx)
    return found
