"""The HTTP cache flow for adapters that do not run on the cache's event loop.

WSGI apps, Django (sync or async) and Flask reach the cache through the process's
loop thread (:mod:`semcache.sync`): the cache and its :class:`HttpCacheEngine` live
there, and a request thread or another event loop asks for one decision per request
(:meth:`BridgedEngine.begin`): a :class:`Replay` to send as it is (a hit, or the 429
breaker's rejection), or a :class:`Forward` to hand the app's answer to while passing
it on. The rules are those of the ASGI middleware, in the same order.
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar, cast

from semcache.http.engine import FlightTicket, HttpCacheEngine
from semcache.http.extract import default_extract_model
from semcache.http.partition import DEFAULT_IGNORED_FIELDS
from semcache.http.policy import (
    HEADER_SIMILARITY,
    HEADER_STATUS,
    Bypass,
    CachePlan,
    Extractor,
    HttpCachePolicy,
    HttpRequest,
)
from semcache.http.responses import DEFAULT_MAX_RESPONSE_BYTES, ResponseRecorder, StoredResponse
from semcache.settings import Settings, SettingsError
from semcache.sync import LoopThread, close_at_exit, loop_thread, shared_cache

if TYPE_CHECKING:
    from semcache.cache import SemanticCache

__all__ = [
    "ADAPTER_OPTIONS",
    "HEADER_ENTRY",
    "OWN_HEADERS",
    "BridgedEngine",
    "Forward",
    "Replay",
    "marked_headers",
]

log = logging.getLogger("semcache")

T = TypeVar("T")

HEADER_ENTRY = "x-semcache-entry"
"""Response header on a hit: the id of the entry served."""

OWN_HEADERS = frozenset({HEADER_STATUS, HEADER_SIMILARITY, HEADER_ENTRY})
"""Response headers the adapters set; an app's own copies are replaced."""

ADAPTER_OPTIONS = frozenset(
    {
        "cache",
        "methods",
        "path_prefix",
        "extract_query",
        "extract_model",
        "extract_partition",
        "ignored_fields",
        "max_response_bytes",
    }
)
"""Keys of an adapter's configuration mapping that are not :class:`Settings` fields."""

_SETTING_NAMES = frozenset(f.name for f in fields(Settings))
_EXTRACTORS = ("extract_query", "extract_model", "extract_partition")


def marked_headers(headers: Iterable[tuple[str, str]], status: str) -> list[tuple[str, str]]:
    """``headers`` with our ``X-Semcache`` status instead of any the app set."""
    kept = [(name, value) for name, value in headers if name.lower() not in OWN_HEADERS]
    kept.append((HEADER_STATUS, status))
    return kept


@dataclass(frozen=True, slots=True)
class Replay:
    """A response the adapter sends as it is: a stored answer, or the breaker's 503.

    ``headers`` are complete (``X-Semcache`` included, ``Content-Length`` unless
    ``streamed``); ``streamed`` answers are sent chunk by chunk.
    """

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    streamed: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class Forward:
    """The app answers this request: pass its answer on and hand each part here.

    :meth:`start` with the status and headers, :meth:`add` per body chunk, then
    :meth:`finish` once all of it was passed on (a cacheable answer is then stored, in
    the background) or :meth:`abort` when it was not. Either lets the requests waiting
    on this one's single flight in; so does dropping the object unfinished.
    """

    def __init__(self, bridged: BridgedEngine, plan: CachePlan, ticket: FlightTicket | None):
        self.plan = plan
        self._bridged = bridged
        self._ticket = ticket
        self._recorder: ResponseRecorder | None = (
            ResponseRecorder(bridged.policy.max_response_bytes) if plan.store else None
        )
        self._done = False
        self._release: weakref.finalize[Any, Any] | None = None
        if ticket is not None:
            self._release = weakref.finalize(self, _release_later, bridged.loop_thread, ticket)
            self._release.atexit = False

    @property
    def leader(self) -> bool:
        """Do other requests wait for this answer?"""
        return self._ticket is not None

    def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """The app's status and headers (names in any case)."""
        self._bridged.record_upstream(status)
        if self._recorder is None:
            return
        try:
            self._recorder.start(int(status), [(k.lower(), v) for k, v in headers])
        except Exception:
            log.exception("semcache: could not record the response; it will not be stored")
            self._recorder = None

    def add(self, chunk: bytes) -> None:
        if self._recorder is not None:
            self._recorder.add(chunk)

    def discard(self, reason: str) -> None:
        """Keep passing the answer on, but do not store it."""
        if self._recorder is not None:
            self._recorder.abort(reason)

    def finish(self) -> None:
        """The whole answer was passed on: store it if it may be, then release the flight."""
        if self._done:
            return
        self._done = True
        stored: StoredResponse | None = None
        if self._recorder is not None:
            try:
                stored = self._recorder.finish()
            except Exception:
                log.exception("semcache: could not record the response; it will not be stored")
        self._recorder = None
        self._settle(stored)

    def abort(self) -> None:
        """The answer was not passed on completely: store nothing, release the flight."""
        if self._done:
            return
        self._done = True
        self._recorder = None
        self._settle(None)

    def _settle(self, stored: StoredResponse | None) -> None:
        ticket, self._ticket = self._ticket, None
        if self._release is not None:
            self._release.detach()
        if stored is None and ticket is None:
            return
        try:
            self._bridged.loop_thread.spawn(self._bridged.settle(self.plan, stored, ticket))
        except Exception:
            log.exception("semcache: could not store the response")


def _release_later(thread: LoopThread, ticket: FlightTicket) -> None:
    # Reached when a Forward is dropped unfinished (possibly from the garbage collector).
    try:
        thread.spawn(ticket.release())
    except Exception:
        log.debug("semcache: could not release a single flight", exc_info=True)


class BridgedEngine:
    """:class:`HttpCacheEngine` on the loop thread, driven from threads or other loops.

    ``cache`` is a :class:`~semcache.SemanticCache`, a function returning one (called
    once per process, so forked workers build their own; closed at exit), or ``None``
    for the process's shared cache for ``settings`` (:func:`semcache.sync.shared_cache`).
    An instance is used as it is in every process: pass a function when the app is
    loaded before workers fork. ``settings`` (the request rules and the 429 breaker)
    default to the cache's when an instance is given, else to the ``SEMANTIC_CACHE_*``
    environment. The other options are those of :class:`HttpCachePolicy`.

    Sync extractors are called in the request's own thread (so framework
    thread-locals and database connections work). When one of them is async, the
    request is planned on the loop thread, and all of them run there.
    """

    def __init__(
        self,
        *,
        cache: SemanticCache | Callable[[], SemanticCache] | None = None,
        settings: Settings | None = None,
        methods: Iterable[str] = ("POST",),
        path_prefix: str = "/",
        extract_query: Extractor | None = None,
        extract_model: Extractor | None = None,
        extract_partition: Extractor | None = None,
        ignored_fields: Collection[str] = DEFAULT_IGNORED_FIELDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        loop: LoopThread | None = None,
    ) -> None:
        given = cache if _is_cache(cache) else None
        if settings is None:
            settings = given.settings if given is not None else Settings.from_env()
        self.settings = settings
        self.loop_thread = loop or loop_thread()
        self.policy = HttpCachePolicy(
            settings,
            methods=methods,
            path_prefix=path_prefix,
            extract_query=extract_query,
            extract_model=extract_model,
            extract_partition=extract_partition,
            ignored_fields=ignored_fields,
            max_response_bytes=max_response_bytes,
        )
        self._cache_source = cache
        self._engine: tuple[int, HttpCacheEngine] | None = None
        self._engine_lock = threading.Lock()
        self.custom_extractors = (
            extract_query is not None
            or extract_partition is not None
            or extract_model not in (None, default_extract_model)
        )
        """Does any extractor use the framework's request? (The defaults do not.)"""
        extractors = (extract_query, extract_model, extract_partition)
        self._async_extractors = any(_is_async(fn) for fn in extractors if fn is not None)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> BridgedEngine:
        """Build from a configuration mapping (a framework's ``SEMCACHE`` setting).

        Keys are :class:`Settings` field names (overriding the ``SEMANTIC_CACHE_*``
        environment; with a ``cache`` instance, its settings for the request rules
        only, as the cache keeps its own) and the adapter options
        (:data:`ADAPTER_OPTIONS`), case-insensitive. ``cache`` and the extractors may
        be dotted import paths (``"myapp.cache.tenant"`` or ``"myapp.cache:tenant"``).
        ``overrides`` win over ``config``. Raises :class:`SettingsError` when invalid.
        """
        values = {str(k).lower(): v for k, v in config.items()}
        values.update(overrides)
        unknown = set(values) - _SETTING_NAMES - ADAPTER_OPTIONS
        if unknown:
            raise SettingsError(f"unknown semcache option(s): {', '.join(sorted(unknown))}")
        options = {k: v for k, v in values.items() if k in ADAPTER_OPTIONS}
        setting_values = {k: v for k, v in values.items() if k in _SETTING_NAMES}
        for name in ("cache", *_EXTRACTORS):
            if isinstance(options.get(name), str):
                options[name] = _import(options[name], name)
        cache = options.get("cache")
        if cache is not None and not (_is_cache(cache) or callable(cache)):
            raise SettingsError("cache must be a SemanticCache or a function returning one")
        for name in _EXTRACTORS:
            if options.get(name) is not None and not callable(options[name]):
                raise SettingsError(f"{name} must be a callable (request, body) -> str | None")
        base = cache.settings if _is_cache(cache) else Settings.from_env()
        settings = base.replace(**setting_values) if setting_values else base
        return cls(settings=settings, **options)

    # -- the cache, per process --------------------------------------------------

    @property
    def engine(self) -> HttpCacheEngine:
        """This process's engine (built on first use; a forked child builds its own)."""
        current = self._engine
        pid = os.getpid()
        if current is not None and current[0] == pid:
            return current[1]
        with self._engine_lock:
            current = self._engine
            if current is not None and current[0] == pid:
                return current[1]
            source = self._cache_source
            if source is None:
                cache = shared_cache(self.settings)
            elif _is_cache(source):
                cache = source
            else:
                cache = cast("Callable[[], SemanticCache]", source)()
                close_at_exit(cache)
            engine = HttpCacheEngine(cache, self.policy, settings=self.settings)
            self._engine = (pid, engine)
            return engine

    @property
    def cache(self) -> SemanticCache:
        return self.engine.cache

    # -- planning ----------------------------------------------------------------

    def plan(
        self,
        request: HttpRequest,
        native: Any = None,
        *,
        context: contextvars.Context | None = None,
    ) -> CachePlan | Bypass:
        """:meth:`HttpCachePolicy.plan` from a sync caller. Never raises.

        ``context`` is used for async extractors, which run on the loop thread
        (default: a copy of the caller's, so framework context variables work).
        """
        coro = self.policy.plan(request, native)
        if not self._async_extractors:
            # Sync extractors never suspend: run them here, in the request's thread.
            value = _run_inline(coro)
            if not isinstance(value, _Suspended):
                return value
            coro = self.policy.plan(request, native)
        ctx = context if context is not None else contextvars.copy_context()
        return self._call(coro, self._plan_budget, Bypass("timeout"), context=ctx)

    async def aplan(self, request: HttpRequest, native: Any = None) -> CachePlan | Bypass:
        """:meth:`HttpCachePolicy.plan` on the caller's own loop (extractors run there)."""
        return await self.policy.plan(request, native)

    # -- one decision per request ------------------------------------------------

    def begin(self, plan: CachePlan) -> Replay | Forward:
        """From a sync caller: a stored answer to send, or the app must answer."""
        outcome = self._call(self._begin(plan), self._begin_budget, None)
        return outcome if outcome is not None else Forward(self, plan, None)

    async def abegin(self, plan: CachePlan) -> Replay | Forward:
        """:meth:`begin` from another event loop."""
        try:
            return await self.loop_thread.run_async(self._begin(plan))
        except Exception:
            log.exception("semcache: cache unavailable; calling the app directly")
            return Forward(self, plan, None)

    async def _begin(self, plan: CachePlan) -> Replay | Forward:
        # The order of the ASGI middleware: lookup, breaker, single flight, follower lookup.
        engine = self.engine
        if plan.lookup:
            replay = await self._hit(plan)
            if replay is not None:
                return replay
        if engine.breaker.is_open():
            return self._rejection()
        if not plan.lookup:  # a refresh is the client's explicit wish: never collapsed
            return Forward(self, plan, None)
        ticket = await engine.join_flight(plan)
        if ticket.leader:
            return Forward(self, plan, ticket)
        replay = await self._hit(plan)
        if replay is not None:
            return replay
        if engine.breaker.is_open():
            return self._rejection()
        return Forward(self, plan, None)  # the leader's answer was not stored

    async def _hit(self, plan: CachePlan) -> Replay | None:
        answer = await self.engine.lookup(plan)
        if answer is None:
            return None
        stored = answer.response
        try:
            headers = stored.replay_headers(similarity=answer.similarity, entry_id=answer.entry_id)
            return Replay(stored.status, headers, stored.chunks(), stored.streamed)
        except Exception:
            log.exception("semcache: unusable cache entry; treating as a miss")
            return None

    def _rejection(self) -> Replay:
        status, headers, body = self.engine.breaker.rejection()
        return Replay(status, headers, [body])

    async def settle(
        self, plan: CachePlan, stored: StoredResponse | None, ticket: FlightTicket | None
    ) -> None:
        """Store an answer (when there is one), then let the waiting requests in."""
        try:
            if stored is not None:
                await self.engine.store(plan, stored)
        finally:
            if ticket is not None:
                await ticket.release()

    def record_upstream(self, status: int) -> None:
        """Note the status of an answer that came from the app (the 429 breaker)."""
        try:
            # On the loop, so it is ordered with the lookups that read the breaker.
            self.loop_thread.call_soon(self._record, int(status))
        except Exception:
            log.exception("semcache: 429 breaker failed")

    def _record(self, status: int) -> None:
        try:
            self.engine.breaker.record(status)
        except Exception:
            log.exception("semcache: 429 breaker failed")

    # -- helpers -----------------------------------------------------------------

    @property
    def _plan_budget(self) -> float:
        return self.settings.lookup_timeout_ms / 1000 + 1.0

    @property
    def _begin_budget(self) -> float:
        # Two lookups and, for a follower, the wait for the leader's answer.
        flight = getattr(getattr(self.engine.cache, "single_flight", None), "wait", 60.0)
        return 2 * self.settings.lookup_timeout_ms / 1000 + float(flight) + 1.0

    def _call(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float,
        default: T,
        *,
        context: contextvars.Context | None = None,
    ) -> T:
        # Fail open: a wedged or broken loop thread means "as if uncached".
        try:
            return self.loop_thread.run(coro, timeout, context=context)
        except TimeoutError:
            log.warning("semcache: no answer from the cache within %.1fs; passing through", timeout)
        except Exception:
            log.exception("semcache: cache unavailable; passing through")
        return default


class _Suspended:
    """The coroutine would have waited for an event loop."""


def _run_inline(coro: Coroutine[Any, Any, T]) -> T | _Suspended:
    """Run ``coro`` in this thread if it finishes without suspending; else close it."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    return _Suspended()


def _is_cache(value: object) -> TypeGuard[SemanticCache]:
    return hasattr(value, "lookup") and hasattr(value, "store") and hasattr(value, "settings")


def _is_async(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _import(path: str, name: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise SettingsError(f"{name}={path!r}: expected a dotted path like 'package.module.name'")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(f"{name}={path!r} could not be imported: {exc}") from exc
    return value
