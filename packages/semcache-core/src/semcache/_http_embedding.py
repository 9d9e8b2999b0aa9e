"""Shared plumbing for embedders that call an HTTP embedding API (Ollama, Cohere, Voyage...).

The core depends on no HTTP client, so a provider package brings its own (httpx) behind
the small :class:`Transport` protocol and describes its request and response shapes;
:class:`HTTPEmbedder` does the rest once for every provider: splitting batches at the
provider's limits while keeping order, retries with exponential backoff on 429, 5xx and
connection errors (honouring ``Retry-After``), errors that say what to fix, dimension
discovery with one probe call, and the float32 matrix.

Private to the semcache distributions: third-party plugins should copy what they need
rather than import it, as it may change between releases.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
import weakref
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol

import numpy as np

from semcache import env
from semcache.embedder import BaseEmbedder
from semcache.env import EMBEDDER_API_KEY
from semcache.errors import SemcacheError, SettingsError
from semcache.types import Matrix

__all__ = [
    "EmbeddingAPIError",
    "EmbeddingAuthError",
    "HTTPEmbedder",
    "HTTPReply",
    "RetryPolicy",
    "Transport",
    "TransportError",
    "is_retryable",
    "parse_retry_after",
    "resolve_api_key",
    "split_batches",
    "strip_suffix_path",
]

PROBE_TEXT = "dimension probe"
PROBE_TIMEOUT = 60.0
"""Seconds a probe call may take: it runs at start-up, where a local server may still be
loading the model, not on a request's path."""


def is_retryable(status: int) -> bool:
    """Worth sending again: timeouts, rate limits, conflicts, server errors (bar 501, 505)."""
    return status in (408, 409, 425, 429) or (status >= 500 and status not in (501, 505))


class EmbeddingAPIError(SemcacheError):
    """An embedding API failed or refused a request (after any retries)."""

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        """The HTTP status, or ``None`` when the server never answered."""


class EmbeddingAuthError(EmbeddingAPIError):
    """The API rejected the credentials (HTTP 401 or 403); the message names the key's source."""


class TransportError(SemcacheError):
    """No HTTP answer: connection refused or reset, name resolution failed, or a timeout."""


@dataclass(frozen=True, slots=True)
class HTTPReply:
    """What a :class:`Transport` returns: status, raw body, headers with lower-case names."""

    status: int
    body: bytes
    headers: Mapping[str, str]


class Transport(Protocol):
    """POSTs one JSON payload to a path under the API's base URL.

    Raises :class:`TransportError` when no HTTP answer came back; any status is a reply.
    A transport belongs to the event loop it was opened in.
    """

    async def __call__(self, path: str, payload: Mapping[str, Any]) -> HTTPReply: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a failed request again."""

    max_retries: int = 2
    """Retries after the first attempt, on 429, 5xx and connection errors."""
    base_delay: float = 0.2
    """First backoff in seconds; doubled on each retry, with jitter."""
    max_delay: float = 5.0
    """Longest single backoff."""
    max_retry_after: float = 30.0
    """A ``Retry-After`` longer than this fails at once instead of holding the caller."""

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (equal jitter)."""
        delay = min(self.max_delay, self.base_delay * 2.0**attempt)
        return delay / 2 + random.random() * delay / 2


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta seconds or an HTTP date), else ``None``."""
    raw = headers.get("retry-after-ms")
    if raw is not None:
        try:
            value = float(raw) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    return max(0.0, value) if math.isfinite(value) else None


def split_batches(
    texts: Sequence[str], max_items: int, max_bytes: int | None = None, overhead: int = 0
) -> list[list[str]]:
    """Consecutive slices of ``texts``, each within ``max_items`` and, when given, within
    ``max_bytes`` of UTF-8 (plus ``overhead`` per text). A text over the byte budget on
    its own still gets a batch of its own: the API truncates or refuses it, not us."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in texts:
        cost = len(text.encode("utf-8", "surrogatepass")) + overhead if max_bytes else 0
        full = len(current) >= max_items or (
            max_bytes is not None and current and size + cost > max_bytes
        )
        if full:
            batches.append(current)
            current, size = [], 0
        current.append(text)
        size += cost
    if current:
        batches.append(current)
    return batches


def resolve_api_key(
    explicit: str | None,
    explicit_source: str,
    variables: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """The API key and where it came from: ``explicit`` first, then the first set variable."""
    if explicit:
        return explicit, explicit_source
    environ = os.environ if environ is None else environ
    for var in variables:
        value = environ.get(var, "").strip()
        if value:
            return value, var
    return None, ""


def require_api_key(
    explicit: str | None, provider: str, variables: Sequence[str]
) -> tuple[str, str]:
    """Like :func:`resolve_api_key`, for providers that cannot work without a key: raise a
    :class:`SettingsError` naming every variable that would supply it."""
    key, source = resolve_api_key(explicit, "the api_key argument", variables)
    if key is None:
        raise SettingsError(
            f"the {provider} embedder needs an API key: set "
            + " or ".join([EMBEDDER_API_KEY, *variables])
        )
    return key, source


def strip_suffix_path(base_url: str, *suffixes: str) -> str:
    """``base_url`` without a trailing slash or a trailing API version path the caller adds."""
    url = base_url.strip().rstrip("/")
    for suffix in suffixes:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def _error_text(body: bytes) -> str:
    """The provider's own error message from a JSON or plain-text body, shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    for _ in range(3):  # {"error": {"message": ...}} and similar nestings
        if not isinstance(data, dict):
            break
        for key in ("message", "detail", "error", "msg"):
            if key in data:
                data = data[key]
                break
        else:
            break
    if isinstance(data, str):
        text = data
    elif data is not None and not isinstance(data, dict):
        text = json.dumps(data)
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


class HTTPEmbedder(BaseEmbedder):
    """Base class of the HTTP embedders: subclasses describe the API, this class calls it.

    A subclass sets the class attributes, implements :meth:`_open_transport`,
    :meth:`_payload` and :meth:`_vectors`, and may extend :meth:`_id_model`,
    :meth:`_id_parts` and :meth:`_status_hint`.

    ``dimension`` is known up front when configured or when the model's native size is
    known; otherwise the first access makes one probe call (blocking the caller; plugin
    creation does it in a worker thread) and ``await probe()`` learns it without blocking.
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
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max(1, max_concurrency)
        self.key_source = key_source
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

    def _status_hint(self, status: int, message: str) -> str:
        """Extra advice for an error status (``ollama pull MODEL``...); empty for none."""
        return ""

    # -- Embedder ----------------------------------------------------------------------

    @property
    def model_id(self) -> str:  # type: ignore[override]
        parts = [f"{self.provider}/{self._id_model()}", f"dim={self.dimension}", *self._id_parts()]
        return ":".join(parts)

    @property
    def dimension(self) -> int:  # type: ignore[override]
        if self._dimension is None:
            self._dimension = self._probe_blocking()
        return self._dimension

    async def probe(self) -> int:
        """The vector size, learned with one API call when not known yet."""
        if self._dimension is None:
            await self.embed([PROBE_TEXT])
        assert self._dimension is not None
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> Matrix:
        items = list(texts)
        if not items:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
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

    def _probe_blocking(self) -> int:
        async def run() -> int:
            transport = self._open_transport(max(self.timeout, PROBE_TIMEOUT))
            try:
                matrix = await self._embed_batch(transport, [PROBE_TEXT])
            finally:
                await transport.aclose()
            return int(matrix.shape[1])

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        # Inside a running loop asyncio.run is not allowed: probe on a helper thread. This
        # blocks the loop once; `await embedder.probe()` first avoids it.
        with ThreadPoolExecutor(1, thread_name_prefix="semcache-probe") as pool:
            return pool.submit(asyncio.run, run()).result()

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
                    raise self._error(
                        f"at {self.base_url} did not answer ({exc})" + self._attempts_note(attempt),
                        None,
                    ) from exc
                delay = self.retry.backoff(attempt)
            else:
                if 200 <= reply.status < 300:
                    return reply
                message = _error_text(reply.body)
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

    def _status_error(self, status: int, message: str, note: str) -> EmbeddingAPIError:
        hint = self._status_hint(status, message)
        text = f"{self.display_name} answered HTTP {status}{note}: {message or '(no message)'}"
        return EmbeddingAPIError(
            text + (f"; {hint}" if hint else ""), provider=self.provider, status=status
        )

    def _auth_error(self, status: int, message: str) -> EmbeddingAuthError:
        where = " or ".join([env.EMBEDDER_API_KEY, *self.key_variables])
        said = f"HTTP {status}: {message or 'no message'}"
        if self.key_source:
            verb = "refused" if status == 403 else "rejected"
            what = f"{verb} the API key from {self.key_source} ({said})"
        else:
            what = f"asked for an API key ({said}) and none was set"
        return EmbeddingAuthError(
            f"{self.display_name} {what}; set {where} to a valid {self.display_name} API key",
            provider=self.provider,
            status=status,
        )
