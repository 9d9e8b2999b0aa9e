"""LangChain's cache interface (``BaseCache``) on a :class:`semcache.SemanticCache`.

LangChain asks its cache with two strings: the prompt (for a chat model, its messages
serialized with ``langchain_core.load.dumps``) and the LLM string (the model's class and
parameters: model name, temperature, stop words...). They are split as the HTTP adapters
split a chat request:

- the question, the only embedded text, is the text of the last human message (for a
  completion model, the whole prompt);
- the earlier turns are the context (``SemanticCache(context=...)``): matched exactly or
  semantically, as the cache's ``context_mode`` setting says (turn by turn by default);
- the partition, matched exactly, is the LLM string, the system messages, the messages
  after the last human one and the shape of the conversation.

The cache runs on the process's semcache loop thread (:mod:`semcache.sync`), as for the
Django and Flask adapters, so the sync methods work in plain sync code and in threads that
run an event loop of their own, and the async methods never block their loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    convert_to_openai_messages,
)
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)

from semcache.errors import UnsupportedOperationError
from semcache.http.config import is_cache
from semcache.http.extract import extract
from semcache.settings import Settings
from semcache.sync import LoopThread, close_at_exit, loop_thread, shared_cache

if TYPE_CHECKING:
    from semcache.cache import SemanticCache

__all__ = ["LANGCHAIN_TAG", "CacheKey", "SemanticLLMCache"]

log = logging.getLogger("semcache")

T = TypeVar("T")

LANGCHAIN_TAG = "langchain"
"""The ``path`` tag of every entry this adapter stores: :meth:`SemanticLLMCache.clear`
flushes them (``await cache.flush_where(path="langchain")`` does the same)."""

_PAYLOAD_PREFIX = b"semcache-langchain/1\n"
_GENERATION_TYPES = (Generation, GenerationChunk, ChatGeneration, ChatGenerationChunk)
_ANSWER_CLASSES: list[Any] = [*_GENERATION_TYPES, AIMessage, AIMessageChunk]
_CLEAR_TIMEOUT = 60.0

# Newer langchain-core revives only the classes it is told to (older versions have no
# such parameter and revive any LangChain class).
_RESTRICTED_LOADS = "allowed_objects" in inspect.signature(loads).parameters
warnings.filterwarnings(
    "ignore", message=r"The function `loads` is in beta", module=r"semcache_langchain(\.|$)"
)


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What one LangChain prompt is looked up and stored under.

    ``question`` is embedded; ``context`` (the earlier turns, or ``None``) is matched per
    the ``context_mode`` setting; ``partition`` is matched exactly (the cache hashes it).
    """

    question: str
    context: str | None
    partition: str


class SemanticLLMCache(BaseCache):
    """A semantic cache for LangChain models: ``set_llm_cache(SemanticLLMCache(cache))``.

    ``cache`` is a :class:`semcache.SemanticCache`, a function returning one (called once
    per process, so forked workers build their own; closed at exit), or ``None`` for the
    process's shared cache for ``settings`` (default: the ``SEMANTIC_CACHE_*``
    environment). ``namespace`` joins the partition (a tenant, an application), ``ttl``
    overrides the cache's for the answers stored here, and ``timeout`` (seconds) bounds
    one call from LangChain (default: the cache's lookup budget plus, until the model is
    loaded, its ``start_timeout``).

    A cache problem never fails a model call: :meth:`lookup` is then a miss and
    :meth:`update` stores nothing. :meth:`clear` removes the entries stored through this
    adapter (on a response store that cannot find them by tag, every entry) and raises
    when it cannot.
    """

    def __init__(
        self,
        cache: SemanticCache | Callable[[], SemanticCache] | None = None,
        *,
        settings: Settings | None = None,
        namespace: str = "",
        ttl: int | None = None,
        timeout: float | None = None,
        loop: LoopThread | None = None,
    ) -> None:
        self._source = cache
        self._settings = settings
        self.namespace = namespace
        self.ttl = ttl
        self.timeout = timeout
        self.loop_thread = loop or loop_thread()
        self._resolved: tuple[int, SemanticCache] | None = None
        self._lock = threading.Lock()

    # -- the cache, per process --------------------------------------------------

    @property
    def cache(self) -> SemanticCache:
        """This process's :class:`semcache.SemanticCache` (built on first use)."""
        current = self._resolved
        pid = os.getpid()
        if current is not None and current[0] == pid:
            return current[1]
        with self._lock:
            current = self._resolved
            if current is not None and current[0] == pid:
                return current[1]
            source = self._source
            if source is None:
                cache = shared_cache(self._settings or Settings.from_env())
            elif is_cache(source):
                cache = source
            else:
                cache = cast("Callable[[], SemanticCache]", source)()
                close_at_exit(cache)
            self._resolved = (pid, cache)
            return cache

    # -- keys ----------------------------------------------------------------------

    def key(self, prompt: str, llm_string: str) -> CacheKey | None:
        """The question, context and partition of one LangChain lookup; ``None`` when the
        prompt holds no question (no human message with text). Raises for a prompt that
        looks like serialized messages but cannot be read."""
        messages = _messages(prompt)
        rest: Any = None
        context: str | None = None
        if messages is None:  # a completion model: the prompt is the question
            question = prompt
        else:
            found = extract({"messages": convert_to_openai_messages(messages)})
            if found is None or found.source != "messages":
                return None
            question, context = found.query, found.context
            rest = found.rest_without_context["messages"]
        if not question.strip():
            return None
        partition = json.dumps(
            ["semcache-langchain", self.namespace, llm_string, rest],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        return CacheKey(question, context, partition)

    # -- BaseCache, sync -------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The stored generations for a prompt that means the same, or ``None``."""
        try:
            key = self.key(prompt, llm_string)
            if key is None:
                return None
            cache = self.cache
            if self.loop_thread.in_loop_thread():
                # Called on the cache's own loop, which cannot wait for itself: a miss.
                log.debug("semcache: LangChain lookup on the cache's loop thread; a miss")
                return None
            return self.loop_thread.run(self._lookup(cache, key), self._budget(cache))
        except TimeoutError:
            log.warning("semcache: no answer from the cache in time; calling the model")
        except Exception:
            log.exception("semcache: cache unavailable; calling the model")
        return None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store the model's generations for this prompt (nothing on a cache problem)."""
        try:
            key = self.key(prompt, llm_string)
            if key is None or not return_val:
                return
            payload = _encode(return_val)
            cache = self.cache
            store = self._store(cache, key, payload)
            if self.loop_thread.in_loop_thread():
                self.loop_thread.spawn(store)  # cannot wait here: store in the background
                return
            self.loop_thread.run(store, self._budget(cache))
        except TimeoutError:
            log.warning("semcache: the cache did not store the answer in time")
        except Exception:
            log.exception("semcache: answer not cached")

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry stored through this adapter (see the class docs)."""
        self.loop_thread.run(_clear(self.cache), self.timeout or _CLEAR_TIMEOUT)

    # -- BaseCache, async --------------------------------------------------------------

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """:meth:`lookup` without blocking the caller's event loop."""
        try:
            key = self.key(prompt, llm_string)
            if key is None:
                return None
            cache = self.cache
            return await self._on_loop(self._lookup(cache, key), self._budget(cache))
        except TimeoutError:
            log.warning("semcache: no answer from the cache in time; calling the model")
        except Exception:
            log.exception("semcache: cache unavailable; calling the model")
        return None

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """:meth:`update` without blocking the caller's event loop."""
        try:
            key = self.key(prompt, llm_string)
            if key is None or not return_val:
                return
            payload = _encode(return_val)
            cache = self.cache
            await self._on_loop(self._store(cache, key, payload), self._budget(cache))
        except TimeoutError:
            log.warning("semcache: the cache did not store the answer in time")
        except Exception:
            log.exception("semcache: answer not cached")

    async def aclear(self, **kwargs: Any) -> None:
        """:meth:`clear` without blocking the caller's event loop."""
        await self._on_loop(_clear(self.cache), self.timeout or _CLEAR_TIMEOUT)

    # -- on the cache's loop -------------------------------------------------------------

    async def _lookup(self, cache: SemanticCache, key: CacheKey) -> RETURN_VAL_TYPE | None:
        await _when_ready(cache)
        hit = await cache.lookup(key.question, partition=key.partition, context=key.context)
        if hit is None:
            return None
        generations = _decode(hit.payload)
        if generations is None:
            log.warning("semcache: entry %s is not a LangChain answer; a miss", hit.entry_id)
        return generations

    async def _store(self, cache: SemanticCache, key: CacheKey, payload: bytes) -> None:
        await _when_ready(cache)
        await cache.store(
            key.question,
            payload,
            partition=key.partition,
            ttl=self.ttl,
            metadata={"path": LANGCHAIN_TAG},
            context=key.context,
        )

    async def _on_loop(self, coro: Coroutine[Any, Any, T], budget: float) -> T:
        async with asyncio.timeout(budget):
            return await self.loop_thread.run_async(coro)

    def _budget(self, cache: SemanticCache) -> float:
        if self.timeout is not None:
            return self.timeout
        settings = cache.settings
        starting = settings.start_timeout if not getattr(cache, "started", True) else 0.0
        return starting + settings.lookup_timeout_ms / 1000 + 1.0


async def _when_ready(cache: SemanticCache) -> None:
    # The first calls wait for the model to load (start_timeout) rather than miss.
    wait = cache.settings.start_timeout
    if wait > 0 and not getattr(cache, "started", True):
        await cache.ready(wait)  # never raises: a failed start is logged


async def _clear(cache: SemanticCache) -> None:
    try:
        await cache.flush_where(path=LANGCHAIN_TAG)
    except UnsupportedOperationError:
        await cache.flush()


def _messages(prompt: str) -> list[BaseMessage] | None:
    """A chat model's messages, or ``None`` for a completion model's plain prompt."""
    if not prompt.startswith("["):
        return None
    try:
        data = json.loads(prompt)
    except ValueError:
        return None
    if not (
        isinstance(data, list)
        and data
        and all(isinstance(item, dict) and item.get("lc") == 1 for item in data)
    ):
        return None
    revived = _loads(prompt, "messages")
    if not (isinstance(revived, list) and all(isinstance(m, BaseMessage) for m in revived)):
        raise ValueError("the prompt is not a list of LangChain messages")
    return revived


def _encode(generations: Sequence[Generation]) -> bytes:
    return _PAYLOAD_PREFIX + dumps(list(generations)).encode("utf-8")


def _decode(payload: bytes) -> list[Generation] | None:
    if not payload.startswith(_PAYLOAD_PREFIX):
        return None
    try:
        revived = _loads(payload[len(_PAYLOAD_PREFIX) :].decode("utf-8"), _ANSWER_CLASSES)
    except Exception:
        log.exception("semcache: a stored LangChain answer could not be read")
        return None
    if not (
        isinstance(revived, list)
        and revived
        and all(isinstance(g, _GENERATION_TYPES) for g in revived)
    ):
        return None
    return revived


def _loads(text: str, allowed: Any) -> Any:
    if _RESTRICTED_LOADS:
        return loads(text, allowed_objects=allowed)
    return loads(text)  # pragma: no cover - langchain-core without allowed_objects
