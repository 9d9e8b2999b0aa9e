"""`OpenAIEmbedder`: the embeddings endpoint of OpenAI or any OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semcache.embedder import BaseEmbedder, normalize_rows
from semcache.settings import Settings
from semcache.types import Matrix
from semcache_embed_openai._truncate import Truncator, encoding_name_for

__all__ = ["DEFAULT_MODEL", "KNOWN_MODELS", "ModelInfo", "OpenAIEmbedder", "probe_dimension"]

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
    ``send_dimensions_to_api=False`` and ``dimensions`` only declares the size (needed
    for models this package does not know, e.g. on an OpenAI-compatible server).

    ``api_key`` defaults to ``OPENAI_API_KEY``, ``base_url`` to ``OPENAI_BASE_URL``
    (then OpenAI's). A server at a custom ``base_url`` may need no key at all.
    ``timeout`` is in seconds per attempt; ``max_retries`` retries 408, 409, 429 and 5xx
    answers and connection errors, with the client's backoff (honouring Retry-After).

    Inputs longer than ``max_input_tokens`` (the model's limit when known) are cut,
    with tiktoken in a worker thread, instead of being refused by the API; see
    :class:`~semcache_embed_openai._truncate.Truncator` for what happens offline.
    ``model_id`` overrides the index name (default ``openai/MODEL`` plus ``:dim=N``
    when the API shortens vectors). Pass ``client`` to reuse a configured
    ``openai.AsyncOpenAI`` (Azure, proxies); it is then not closed by :meth:`aclose`.
    """

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
        if dimensions is None:
            if info is None:
                raise ValueError(
                    f"the size of {model!r} vectors is unknown: pass dimensions=N "
                    "(with send_dimensions_to_api=False for a model with a fixed size)"
                )
            dimensions = info.dimension
        native = info.dimension if info is not None else None
        # Asking for the native size changes nothing, and fixed-size models refuse it.
        self._send_dimensions = send_dimensions_to_api and dimensions != native
        if self._send_dimensions and info is not None and not info.shortenable:
            raise ValueError(
                f"{model!r} cannot shorten its vectors: use dimensions={native} or "
                "send_dimensions_to_api=False"
            )
        self.model = model
        self.dimension = dimensions
        self.model_id = model_id or (
            f"openai/{model}:dim={dimensions}" if self._send_dimensions else f"openai/{model}"
        )
        limit = (
            max_input_tokens
            if max_input_tokens is not None
            else (info.max_tokens if info is not None else None)
        )
        self._truncator = (
            Truncator(limit, encoding if encoding is not None else encoding_name_for(model))
            if limit is not None
            else None
        )
        self.calls = 0
        """Requests sent (one per ``embed`` call with texts, more past 2048 inputs)."""
        self._owns_client = client is None
        if client is None:
            import openai

            client = openai.AsyncOpenAI(
                api_key=_api_key(api_key, base_url),
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
            )
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        """Built from ``SEMANTIC_CACHE_EMBEDDER_*`` settings.

        The size of a model this package does not know is read from the API with one
        request unless ``embedder_dimensions`` gives it (then it is a declaration, not
        sent). Blocking: the plugin hook runs it in a worker thread.
        """
        model = settings.embedder_model or DEFAULT_MODEL
        info = KNOWN_MODELS.get(model)
        api_key, base_url = settings.embedder_api_key, settings.embedder_base_url
        timeout = settings.embedder_timeout_ms / 1000
        dimensions = settings.embedder_dimensions
        if dimensions is None and info is None:
            dimensions = probe_dimension(model, api_key=api_key, base_url=base_url)
        return cls(
            model,
            dimensions=dimensions,
            send_dimensions_to_api=info is not None and info.shortenable,
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=settings.embedder_max_retries,
        )

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch = [t if t else " " for t in texts]  # the API refuses empty strings
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
            params["dimensions"] = self.dimension
        self.calls += 1
        response = await self.client.embeddings.create(**params)
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(inputs):
            raise ValueError(f"the API returned {len(data)} embeddings for {len(inputs)} inputs")
        matrix = np.empty((len(inputs), self.dimension), dtype=np.float32)
        for row, item in enumerate(data):
            vector = _decode(item.embedding)
            if vector.shape != (self.dimension,):
                raise ValueError(
                    f"{self.model!r} returned {vector.size}-dimensional vectors, expected "
                    f"{self.dimension}: set dimensions to the model's size"
                )
            matrix[row] = vector
        return matrix

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.close()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model_id={self.model_id!r}, base_url={str(self.client.base_url)!r})"


def _api_key(api_key: str | None, base_url: str | None) -> str | None:
    if api_key is not None or os.environ.get("OPENAI_API_KEY"):
        return api_key
    if base_url is None and not os.environ.get("OPENAI_BASE_URL"):
        raise ValueError(
            "no API key: pass api_key, or set OPENAI_API_KEY or SEMANTIC_CACHE_EMBEDDER_API_KEY"
        )
    return "unused"  # local OpenAI-compatible servers usually want none


def probe_dimension(
    model: str, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 30.0
) -> int:
    """The vector size of ``model``, from one blocking request."""
    import openai

    with openai.OpenAI(
        api_key=_api_key(api_key, base_url), base_url=base_url, timeout=timeout
    ) as client:
        response = client.embeddings.create(
            input=["size probe"], model=model, encoding_format="float"
        )
    return len(_decode(response.data[0].embedding))


def _decode(embedding: Any) -> Matrix:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)
