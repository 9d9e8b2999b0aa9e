"""`OpenAIEmbedder`: the embeddings endpoint of OpenAI or any OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from semcache.embedder import BaseEmbedder, normalize_rows
from semcache.env import EMBEDDER_API_KEY
from semcache.errors import (
    EmbedderNotReadyError,
    EmbeddingAPIError,
    EmbeddingError,
    MissingAPIKeyError,
)
from semcache.settings import Settings
from semcache.types import Matrix
from semcache_embed_http import (
    PROBE_TEXT,
    PROBE_TIMEOUT,
    auth_error,
    char_limit,
    cut_texts,
    error_text,
    input_tokens,
    key_variables_text,
    model_error,
    no_answer_error,
    resolve_api_key,
    status_error,
)
from semcache_embed_openai._truncate import Truncator, encoding_name_for

__all__ = ["DEFAULT_MODEL", "KNOWN_MODELS", "ModelInfo", "OpenAIEmbedder"]

PROVIDER = "openai"
DISPLAY_NAME = "OpenAI"
KEY_VARIABLES = ("OPENAI_API_KEY",)

DEFAULT_MODEL = "text-embedding-3-small"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is known of an OpenAI embedding model."""

    dimension: int
    max_tokens: int
    shortenable: bool


KNOWN_MODELS: Mapping[str, ModelInfo] = {
    "text-embedding-3-small": ModelInfo(1536, 8191, shortenable=True),
    "text-embedding-3-large": ModelInfo(3072, 8191, shortenable=True),
    "text-embedding-ada-002": ModelInfo(1536, 8191, shortenable=False),
}
"""Native size, input token limit and whether the API can shorten vectors (``dimensions``)."""

# The API takes at most 2048 inputs per request.
_MAX_INPUTS = 2048


class OpenAIEmbedder(BaseEmbedder):
    """Embeds through ``POST {base_url}/embeddings`` with the official async client.

    ``dimensions`` is the vector size. For models that can shorten their vectors
    (text-embedding-3-*) it is sent to the API; for a model with a fixed size, say
    ``send_dimensions_to_api=False`` and ``dimensions`` only declares the size. For a
    model this package does not know and no ``dimensions``, the size is learned by one
    explicit call, ``await probe_dimension()`` (the cache does it when it starts); until
    then ``dimension`` raises :class:`~semcache.errors.EmbedderNotReadyError`.

    ``api_key`` defaults to ``OPENAI_API_KEY``, ``base_url`` to ``OPENAI_BASE_URL``
    (then OpenAI's). A server at a custom ``base_url`` may need no key at all; OpenAI
    itself does, and a missing one raises :class:`~semcache.errors.MissingAPIKeyError`.
    ``timeout`` is in seconds per attempt; ``max_retries`` retries 408, 409, 429 and 5xx
    answers and connection errors, with the client's backoff (honouring Retry-After).
    Failures raise the shared :mod:`semcache.errors` classes, as every semcache
    embedder does (the client's own exception is the ``__cause__``).

    Each input is first cut to ``max_input_chars`` characters (8 a token of the limit,
    or of 8,192 tokens for a model with no known limit), so a huge text costs no more
    than the model reads. Inputs longer than ``max_input_tokens`` (the model's limit
    when known) are then cut, with tiktoken in a worker thread, instead of being
    refused by the API; see
    :class:`~semcache_embed_openai._truncate.Truncator` for what happens offline.
    ``model_id`` overrides the index name (default ``openai/MODEL`` plus ``:dim=N``
    when the API shortens vectors). Pass ``client`` to reuse a configured
    ``openai.AsyncOpenAI`` (Azure, proxies); it is then not closed by :meth:`aclose`.
    """

    provider = PROVIDER
    display_name = DISPLAY_NAME
    key_variables = KEY_VARIABLES

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        dimensions: int | None = None,
        send_dimensions_to_api: bool = True,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_input_tokens: int | None = None,
        encoding: str | Any | None = None,
        model_id: str | None = None,
        client: Any | None = None,
    ) -> None:
        info = KNOWN_MODELS.get(model)
        if dimensions is not None and dimensions < 1:
            raise ValueError(f"dimensions must be at least 1: {dimensions}")
        if dimensions is None and info is not None:
            dimensions = info.dimension
        native = info.dimension if info is not None else None
        # Asking for the native size changes nothing, and fixed-size models refuse it.
        self._send_dimensions = (
            send_dimensions_to_api and dimensions is not None and dimensions != native
        )
        if self._send_dimensions and info is not None and not info.shortenable:
            raise ValueError(
                f"{model!r} cannot shorten its vectors: use dimensions={native} or "
                "send_dimensions_to_api=False"
            )
        self.model = model
        self._dimension: int | None = dimensions
        self.model_id = model_id or (
            f"openai/{model}:dim={dimensions}" if self._send_dimensions else f"openai/{model}"
        )
        limit = (
            max_input_tokens
            if max_input_tokens is not None
            else (info.max_tokens if info is not None else None)
        )
        self.max_input_chars = char_limit(limit if limit is not None else input_tokens(None))
        """Characters of each text kept before tiktoken or the API sees it."""
        self._truncator = (
            Truncator(limit, encoding if encoding is not None else encoding_name_for(model))
            if limit is not None
            else None
        )
        self.calls = 0
        """Requests sent (one per ``embed`` call with texts, more past 2048 inputs)."""
        self.key_source = ""
        """Where the API key came from (a variable name), for error messages."""
        self._owns_client = client is None
        if client is None:
            import openai

            key, self.key_source = resolve_api_key(
                api_key, "the api_key argument", self.key_variables
            )
            client = openai.AsyncOpenAI(
                api_key=key or _no_key(base_url),
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
            )
        self.client = client

    @property
    def dimension(self) -> int:  # type: ignore[override]
        if self._dimension is None:
            raise EmbedderNotReadyError(
                f"the vector size of {self.model!r} is not known yet: await "
                "embedder.probe_dimension() first (SemanticCache does so when it starts), "
                "or pass dimensions=N"
            )
        return self._dimension

    async def probe_dimension(self) -> int:
        """The vector size, learned with one API call when not known yet (then kept)."""
        if self._dimension is None:
            client = self.client.with_options(timeout=max(self._timeout(), PROBE_TIMEOUT))
            response = await self._call(
                client.embeddings.create,
                input=[PROBE_TEXT],
                model=self.model,
                encoding_format="float",
            )
            self._dimension = int(_decode(response.data[0].embedding).size)
        return self._dimension

    def probe_dimension_blocking(self) -> int:
        """:meth:`probe_dimension` for synchronous code (a plugin hook in a worker thread).

        Blocks the calling thread for one API call when the size is not known yet. It
        uses a short-lived synchronous client: the async one belongs to the event loop
        that will run :meth:`embed`.
        """
        if self._dimension is not None:
            return self._dimension
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._probe_sync()
        with ThreadPoolExecutor(1, thread_name_prefix="semcache-probe") as pool:
            return pool.submit(self._probe_sync).result()

    def _probe_sync(self) -> int:
        import openai

        with openai.OpenAI(
            api_key=self.client.api_key,
            base_url=str(self.client.base_url),
            timeout=max(self._timeout(), PROBE_TIMEOUT),
            max_retries=self.client.max_retries,
        ) as client:
            response = self._translate(
                lambda: client.embeddings.create(
                    input=[PROBE_TEXT], model=self.model, encoding_format="float"
                )
            )
        self._dimension = int(_decode(response.data[0].embedding).size)
        return self._dimension

    def _timeout(self) -> float:
        timeout = self.client.timeout
        return float(timeout) if isinstance(timeout, int | float) else 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        """Built from ``SEMANTIC_CACHE_EMBEDDER_*`` settings.

        For a model this package does not know, ``embedder_dimensions`` declares its
        size (not sent to the API); without it the size is left to
        :meth:`probe_dimension` (the plugin hook calls :meth:`probe_dimension_blocking`).
        """
        model = settings.embedder_model or DEFAULT_MODEL
        info = KNOWN_MODELS.get(model)
        embedder = cls(
            model,
            dimensions=settings.embedder_dimensions,
            send_dimensions_to_api=info is not None and info.shortenable,
            api_key=settings.embedder_api_key,
            base_url=settings.embedder_base_url,
            timeout=settings.embedder_timeout_ms / 1000,
            max_retries=settings.embedder_max_retries,
        )
        if settings.embedder_api_key:
            embedder.key_source = EMBEDDER_API_KEY
        return embedder

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        # The API refuses empty strings. The character cut comes first, so tiktoken never
        # tokenises (and the API never receives) more than the model could read.
        batch = cut_texts([t if t else " " for t in texts], self.max_input_chars)
        if self._truncator is not None and self._truncator.needed(batch):
            batch = await asyncio.to_thread(self._truncator, batch)
        parts = [
            await self._request(batch[start : start + _MAX_INPUTS])
            for start in range(0, len(batch), _MAX_INPUTS)
        ]
        return normalize_rows(parts[0] if len(parts) == 1 else np.concatenate(parts))

    async def _request(self, inputs: list[str]) -> Matrix:
        params: dict[str, Any] = {
            "input": inputs,
            "model": self.model,
            # Asked for explicitly so the client hands the bytes over undecoded; a
            # server that ignores the format and sends floats is handled too.
            "encoding_format": "base64",
        }
        if self._send_dimensions:
            params["dimensions"] = self._dimension
        self.calls += 1
        response = await self._call(self.client.embeddings.create, **params)
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(inputs):
            raise self._error(
                f"returned {len(data)} embeddings for {len(inputs)} inputs", status=200
            )
        vectors = [_decode(item.embedding) for item in data]
        if self._dimension is None:
            self._dimension = int(vectors[0].size)
        matrix = np.empty((len(inputs), self._dimension), dtype=np.float32)
        for row, vector in enumerate(vectors):
            if vector.shape != (self._dimension,):
                raise self._error(
                    f"returned {vector.size}-dimensional vectors for model {self.model!r}, "
                    f"expected {self._dimension}: set dimensions to the model's size",
                    status=200,
                )
            matrix[row] = vector
        return matrix

    async def _call(self, create: Any, **params: Any) -> Any:
        try:
            return await create(**params)
        except Exception as exc:
            raise self._translated(exc) from exc

    def _translate(self, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            raise self._translated(exc) from exc

    def _translated(self, exc: Exception) -> Exception:
        """The shared semcache error for an ``openai`` client exception."""
        import openai

        names = {"provider": self.provider, "display_name": self.display_name}
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = error_text(exc.response.content) if exc.response is not None else ""
            message = message or str(exc.message)
            if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
                return auth_error(
                    **names,
                    status=status,
                    message=message,
                    key_source=self.key_source,
                    variables=self.key_variables,
                )
            if isinstance(exc, openai.NotFoundError):
                hint = f"check the model name {self.model!r} (for example {DEFAULT_MODEL})"
                return model_error(**names, status=status, message=message, hint=hint)
            return status_error(**names, status=status, message=message)
        if isinstance(exc, openai.APIConnectionError):  # timeouts included
            detail = str(exc.__cause__ or "") or str(exc)
            return no_answer_error(
                **names,
                base_url=str(self.client.base_url).rstrip("/"),
                detail=f"{type(exc).__name__}: {detail}",
            )
        return exc

    def _error(self, what: str, status: int | None) -> EmbeddingError:
        return EmbeddingAPIError(
            f"{self.display_name} {what}", provider=self.provider, status=status
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.close()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model_id={self.model_id!r}, base_url={str(self.client.base_url)!r})"


def _no_key(base_url: str | None) -> str:
    if base_url is None and not os.environ.get("OPENAI_BASE_URL"):
        raise MissingAPIKeyError(
            f"the OpenAI embedder needs an API key: set {key_variables_text(KEY_VARIABLES)} "
            "(or pass api_key); a server at a custom base URL may need none",
            provider=PROVIDER,
        )
    return "unused"  # local OpenAI-compatible servers usually want none


def _decode(embedding: Any) -> Matrix:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)
