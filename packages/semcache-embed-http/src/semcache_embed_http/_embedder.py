"""`HTTPEmbedder`: the base class of the provider embedders (Ollama, Cohere, Voyage...).

A provider package describes its request and response shapes; this class does the rest
once for every provider: splitting batches at the provider's limits while keeping order,
retries with exponential backoff on 429, 5xx and connection errors (honouring
``Retry-After``), the shared :mod:`semcache.errors` classes with messages that say what to
fix, dimension discovery with one explicit probe call, the float32 matrix, and each text
cut to a character bound from the model's input limit before it is sent.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from semcache import env
from semcache.embedder import BaseEmbedder
from semcache.errors import (
    EmbedderNotReadyError,
    EmbeddingAPIError,
    EmbeddingAuthError,
    EmbeddingError,
    SettingsError,
)
from semcache.types import Matrix
from semcache_embed_http._batching import split_batches
from semcache_embed_http._cut import char_limit, cut_texts, input_tokens
from semcache_embed_http._errors import (
    auth_error,
    error_text,
    model_error,
    no_answer_error,
    status_error,
)
from semcache_embed_http._retry import RetryPolicy, is_retryable, parse_retry_after
from semcache_embed_http._transport import HTTPReply, Transport, TransportError

__all__ = ["PROBE_TEXT", "PROBE_TIMEOUT", "HTTPEmbedder"]

PROBE_TEXT = "dimension probe"
PROBE_TIMEOUT = 60.0
"""Seconds a probe call may take: it runs at start-up, where a local server may still be
loading the model, not on a request's path."""


class HTTPEmbedder(BaseEmbedder):
    """Base class of the HTTP embedders: subclasses describe the API, this class calls it.

    A subclass sets the class attributes, implements :meth:`_open_transport`,
    :meth:`_payload` and :meth:`_vectors`, and may extend :meth:`_id_model`,
    :meth:`_id_parts`, :meth:`_model_hint` and :meth:`_status_hint`.

    ``dimension`` is known up front when configured or when the model's native size is
    known. Otherwise it is learned by an explicit step: ``await probe_dimension()`` (one
    API call; :class:`~semcache.SemanticCache` awaits it when it starts), or
    :meth:`probe_dimension_blocking` from synchronous code such as a plugin hook.
    Until then ``dimension`` and ``model_id`` raise
    :class:`~semcache.errors.EmbedderNotReadyError`: reading them never does I/O.
    """

    provider: ClassVar[str]
    """Short name: the model id prefix (``ollama``)."""
    display_name: ClassVar[str]
    """Name in messages (``Ollama``)."""
    path: ClassVar[str]
    """Endpoint path under the base URL."""
    batch_limit: ClassVar[int]
    """Most texts the API accepts in one request."""
    key_variables: ClassVar[tuple[str, ...]] = ()
    """Environment variables the API key is read from, in order of preference."""
    auth_statuses: ClassVar[frozenset[int]] = frozenset({401, 403})
    """Statuses that mean the credentials were refused."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        dimensions: int | None = None,
        native_dimension: int | None = None,
        max_batch: int | None = None,
        max_batch_bytes: int | None = None,
        batch_overhead_bytes: int = 0,
        max_input_tokens: int | None = None,
        model_input_tokens: int | None = None,
        timeout: float = 1.5,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 4,
        key_source: str = "",
    ) -> None:
        if dimensions is not None and dimensions < 1:
            raise SettingsError(f"{env.EMBEDDER_DIMENSIONS}={dimensions!r} must be at least 1")
        if timeout <= 0:
            raise SettingsError(f"the embedding timeout must be positive, not {timeout!r}")
        self.model = model
        self.base_url = base_url
        self.dimensions = dimensions
        """Output size asked of the API, or ``None`` for the model's native size."""
        self.max_batch = max(1, min(max_batch or self.batch_limit, self.batch_limit))
        self.max_batch_bytes = max_batch_bytes
        self.batch_overhead_bytes = batch_overhead_bytes
        self.timeout = timeout
        self.max_input_tokens = (
            max_input_tokens if max_input_tokens is not None else input_tokens(model_input_tokens)
        )
        """Tokens of each text the model is taken to read: ``max_input_tokens`` when given,
        else the model's own limit (``model_input_tokens``) up to ``DEFAULT_MAX_INPUT_TOKENS``."""
        self.max_input_chars = char_limit(self.max_input_tokens)
        """Characters of each text sent; the rest is cut before the request is built."""
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max(1, max_concurrency)
        self.key_source = key_source
        """Where the API key came from (a variable name), for error messages."""
        self.requests = 0
        """HTTP requests sent, retries included (for tests and metrics)."""
        self._dimension: int | None = dimensions or native_dimension
        self._dimension_from_table = dimensions is None and native_dimension is not None
        self._transport: Transport | None = None
        self._transport_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    # -- what a provider supplies -------------------------------------------------

    @abstractmethod
    def _open_transport(self, timeout: float) -> Transport:
        """A new transport to the base URL, with this per-request timeout in seconds."""

    @abstractmethod
    def _payload(self, texts: list[str]) -> dict[str, Any]:
        """The JSON request body for one batch."""

    @abstractmethod
    def _vectors(self, body: Any, count: int) -> Sequence[Sequence[float]]:
        """The ``count`` vectors in a decoded response body, in input order.

        Raise ``ValueError``, ``KeyError`` or ``TypeError`` when the body has another shape.
        """

    def _id_model(self) -> str:
        """The model's name in ``model_id`` (a provider may spell out a default tag)."""
        return self.model

    def _id_parts(self) -> list[str]:
        """Everything besides model and dimension that changes the vectors (input type...)."""
        return []

    def _model_hint(self, status: int, message: str) -> str:
        """Advice when an error status means the model is not served (``ollama pull
        MODEL``); non-empty makes the error an ``EmbeddingModelError``."""
        return ""

    def _status_hint(self, status: int, message: str) -> str:
        """Extra advice for any other error status; empty for none."""
        return ""

    # -- Embedder ----------------------------------------------------------------------

    @property
    def model_id(self) -> str:  # type: ignore[override]
        parts = [f"{self.provider}/{self._id_model()}", f"dim={self.dimension}", *self._id_parts()]
        return ":".join(parts)

    @property
    def dimension(self) -> int:  # type: ignore[override]
        if self._dimension is None:
            raise EmbedderNotReadyError(
                f"the vector size of the {self.display_name} model {self.model!r} is not known "
                "yet: await embedder.probe_dimension() first (SemanticCache does so when it "
                f"starts), or set {env.EMBEDDER_DIMENSIONS}"
            )
        return self._dimension

    @property
    def dimension_known(self) -> bool:
        """Whether ``dimension`` can be read without a probe."""
        return self._dimension is not None

    async def probe_dimension(self) -> int:
        """The vector size, learned with one API call when not known yet (then cached)."""
        if self._dimension is None:
            transport = self._open_transport(max(self.timeout, PROBE_TIMEOUT))
            try:
                await self._embed_batch(transport, [PROBE_TEXT])
            finally:
                await transport.aclose()
        assert self._dimension is not None
        return self._dimension

    def probe_dimension_blocking(self) -> int:
        """:meth:`probe_dimension` for synchronous code (a plugin hook in a worker thread).

        Blocks the calling thread for one API call when the size is not known yet; called
        inside a running event loop it probes on a helper thread, blocking that loop.
        """
        if self._dimension is not None:
            return self._dimension
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.probe_dimension())
        with ThreadPoolExecutor(1, thread_name_prefix="semcache-probe") as pool:
            return pool.submit(asyncio.run, self.probe_dimension()).result()

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        # Cut first: batching, JSON and the provider (and its bill) see the bounded text.
        items = cut_texts(texts, self.max_input_chars)
        batches = split_batches(
            items, self.max_batch, self.max_batch_bytes, self.batch_overhead_bytes
        )
        transport = self._current_transport()
        if len(batches) == 1:
            return await self._embed_batch(transport, batches[0])
        limit = asyncio.Semaphore(self.max_concurrency)

        async def one(batch: list[str]) -> Matrix:
            async with limit:
                return await self._embed_batch(transport, batch)

        tasks = [asyncio.ensure_future(one(batch)) for batch in batches]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            # One batch failed: the others are wasted work, and must not outlive the call.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return np.concatenate(parts, axis=0)

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        owner = self._transport_loop() if self._transport_loop is not None else None
        self._transport_loop = None
        # A transport opened on another (usually finished) loop cannot be closed from this
        # one; its connections went with that loop.
        if transport is not None and owner is asyncio.get_running_loop():
            await transport.aclose()

    # -- internals -------------------------------------------------------------------

    def _current_transport(self) -> Transport:
        loop = asyncio.get_running_loop()
        known = self._transport_loop() if self._transport_loop is not None else None
        if self._transport is None or known is not loop:
            # A client's connections belong to the loop that opened them; a caller on a new
            # loop (asyncio.run per call, a sync bridge) gets a client of its own.
            self._transport = self._open_transport(self.timeout)
            self._transport_loop = weakref.ref(loop)
        return self._transport

    async def _embed_batch(self, transport: Transport, batch: list[str]) -> Matrix:
        reply = await self._send(transport, self._payload(batch))
        try:
            body = json.loads(reply.body)
            rows = self._vectors(body, len(batch))
            matrix = np.asarray(rows, dtype=np.float32)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise self._error(
                f"returned a response this embedder cannot read ({type(exc).__name__}: {exc})",
                reply.status,
            ) from exc
        if matrix.ndim != 2 or matrix.shape[0] != len(batch) or matrix.shape[1] == 0:
            raise self._error(
                f"returned {matrix.shape[0] if matrix.ndim else 0} vectors of shape "
                f"{matrix.shape[1:]} for {len(batch)} texts",
                reply.status,
            )
        self._check_width(int(matrix.shape[1]))
        return matrix

    def _check_width(self, width: int) -> None:
        expected = self._dimension
        if expected is None:
            self._dimension = width
            return
        if width == expected:
            return
        if self.dimensions is not None:
            hint = (
                f"{env.EMBEDDER_DIMENSIONS}={self.dimensions} was asked for; does this model "
                "(and server version) support shortened vectors?"
            )
        elif self._dimension_from_table:
            hint = f"set {env.EMBEDDER_DIMENSIONS}={width} if this model really has that size"
        else:
            hint = "the model behind this name changed; its cached vectors no longer match"
        raise self._error(
            f"returned {width}-dimensional vectors for model {self.model!r}, expected "
            f"{expected}: {hint}",
            200,
        )

    async def _send(self, transport: Transport, payload: Mapping[str, Any]) -> HTTPReply:
        attempt = 0
        while True:
            self.requests += 1
            try:
                reply = await transport(self.path, payload)
            except TransportError as exc:
                if attempt >= self.retry.max_retries:
                    raise no_answer_error(
                        provider=self.provider,
                        display_name=self.display_name,
                        base_url=self.base_url,
                        detail=str(exc),
                        note=self._attempts_note(attempt),
                    ) from exc
                delay = self.retry.backoff(attempt)
            else:
                if 200 <= reply.status < 300:
                    return reply
                message = error_text(reply.body)
                if reply.status in self.auth_statuses:
                    raise self._auth_error(reply.status, message)
                if not is_retryable(reply.status):
                    raise self._status_error(reply.status, message, "")
                if attempt >= self.retry.max_retries:
                    raise self._status_error(reply.status, message, self._attempts_note(attempt))
                wait = parse_retry_after(reply.headers)
                if wait is not None and wait > self.retry.max_retry_after:
                    raise self._status_error(
                        reply.status, message, f" (it asked to retry after {wait:.0f} s)"
                    )
                delay = wait if wait is not None else self.retry.backoff(attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _attempts_note(self, attempt: int) -> str:
        return f" after {attempt + 1} attempts" if attempt else ""

    def _error(self, what: str, status: int | None) -> EmbeddingAPIError:
        return EmbeddingAPIError(
            f"{self.display_name} {what}", provider=self.provider, status=status
        )

    def _status_error(self, status: int, message: str, note: str) -> EmbeddingError:
        names = {"provider": self.provider, "display_name": self.display_name}
        model_hint = self._model_hint(status, message)
        if model_hint:
            return model_error(**names, status=status, message=message, hint=model_hint)
        hint = self._status_hint(status, message)
        return status_error(**names, status=status, message=message, note=note, hint=hint)

    def _auth_error(self, status: int, message: str) -> EmbeddingAuthError:
        return auth_error(
            provider=self.provider,
            display_name=self.display_name,
            status=status,
            message=message,
            key_source=self.key_source,
            variables=self.key_variables,
        )
