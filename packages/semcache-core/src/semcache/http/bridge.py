"""The HTTP cache flow for adapters that do not run on the cache's event loop.

WSGI apps, Django (sync or async) and Flask reach the cache through the process's
loop thread (:mod:`semcache.sync`): the cache and its :class:`HttpCacheEngine` live
there. :class:`BridgedEngine` only carries the engine's calls across: a request thread
or another event loop plans a request, then asks :meth:`HttpCacheEngine.begin` for the
one decision (a :class:`Replay` or a :class:`Forward`), exactly as the ASGI middleware
does on its own loop.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import threading
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from semcache.http.config import is_cache, parse_adapter_config
from semcache.http.engine import HttpCacheEngine
from semcache.http.extract import default_extract_model
from semcache.http.flow import Forward, Replay
from semcache.http.partition import DEFAULT_IGNORED_FIELDS
from semcache.http.policy import Bypass, CachePlan, Extractor, HttpCachePolicy, HttpRequest
from semcache.http.responses import DEFAULT_MAX_RESPONSE_BYTES
from semcache.settings import Settings
from semcache.stores import install_sigterm_flush
from semcache.sync import LoopThread, close_at_exit, loop_thread, shared_cache

if TYPE_CHECKING:
    from semcache.cache import SemanticCache

__all__ = ["BridgedEngine"]

log = logging.getLogger("semcache")

T = TypeVar("T")


class BridgedEngine:
    """:class:`HttpCacheEngine` on the loop thread, driven from threads or other loops.

    ``cache`` is a :class:`~semcache.SemanticCache`, a function returning one (called
    once per process, so forked workers build their own; closed at exit), or ``None``
    for the process's shared cache for ``settings`` (:func:`semcache.sync.shared_cache`).
    An instance is used as it is in every process: pass a function when the app is
    loaded before workers fork. ``settings`` (the request rules and the 429 breakers)
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
        paths: Collection[str] | None = None,
        destination: str | None = None,
        loop: LoopThread | None = None,
    ) -> None:
        given = cache if is_cache(cache) else None
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
            paths=paths,
            destination=destination,
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
        """Build from a configuration mapping (see :func:`semcache.http.config.parse_adapter_config`)."""
        settings, options = parse_adapter_config(config, **overrides)
        return cls(settings=settings, **options)

    # -- the engine, per process -------------------------------------------------

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
            elif is_cache(source):
                cache = source
            else:
                cache = cast("Callable[[], SemanticCache]", source)()
                close_at_exit(cache)
            engine = HttpCacheEngine(
                cache, self.policy, settings=self.settings, loop=self.loop_thread.loop
            )
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

    # -- start-up ------------------------------------------------------------------

    def warm_up(self) -> None:
        """Start loading the cache (model, stores) now, in the background.

        Adapters call this when the app starts (Django builds its middleware, Flask's
        ``init_app``), so the model is loading before the first request arrives.
        """
        # From the app's main thread: a SIGTERM left at its default (a bare dev server)
        # writes the embedded stores' files first. Servers with their own handler keep it.
        install_sigterm_flush()
        try:
            engine = self.engine
            self.loop_thread.spawn(engine.cache.ready())
        except Exception:
            log.exception("semcache: the cache could not start; requests pass through uncached")

    async def _begin_when_ready(self, engine: HttpCacheEngine, plan: CachePlan) -> Replay | Forward:
        # A request that arrives while the model loads waits for it (start_timeout)
        # rather than passing through uncached and unstored.
        wait = self.settings.start_timeout
        if wait > 0 and not getattr(engine.cache, "started", True):
            await engine.cache.ready(wait)  # never raises: a failed start is logged
        return await engine.begin(plan)

    # -- the decision, carried across ----------------------------------------------

    def begin(self, plan: CachePlan) -> Replay | Forward:
        """:meth:`HttpCacheEngine.begin` from a sync caller; fails open to a Forward."""
        try:
            engine = self.engine
        except Exception:
            log.exception("semcache: cache unavailable; calling the app directly")
            return Forward(None, plan, None)
        budget = self.settings.start_timeout + engine.begin_budget
        outcome = self._call(self._begin_when_ready(engine, plan), budget, None)
        return outcome if outcome is not None else Forward(engine, plan, None)

    async def abegin(self, plan: CachePlan) -> Replay | Forward:
        """:meth:`HttpCacheEngine.begin` from another event loop."""
        try:
            engine = self.engine
        except Exception:
            log.exception("semcache: cache unavailable; calling the app directly")
            return Forward(None, plan, None)
        try:
            return await self.loop_thread.run_async(self._begin_when_ready(engine, plan))
        except Exception:
            log.exception("semcache: cache unavailable; calling the app directly")
            return Forward(engine, plan, None)

    # -- helpers -----------------------------------------------------------------

    @property
    def _plan_budget(self) -> float:
        return self.settings.lookup_timeout_ms / 1000 + 1.0

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


def _is_async(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)
