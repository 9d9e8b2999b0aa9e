"""`CohereEmbedder`: vectors from the Cohere Embed API (``POST /v2/embed``)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from semcache.env import EMBEDDER_API_KEY, EMBEDDER_DIMENSIONS, EMBEDDER_INPUT_TYPE
from semcache.errors import SettingsError
from semcache.settings import Settings
from semcache_embed_http import (
    HTTPEmbedder,
    HttpxTransport,
    RetryPolicy,
    require_api_key,
    strip_suffix_path,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_INPUT_TYPE",
    "DEFAULT_MODEL",
    "INPUT_TYPES",
    "KNOWN_DIMENSIONS",
    "CohereEmbedder",
]

DEFAULT_MODEL = "embed-v4.0"
DEFAULT_BASE_URL = "https://api.cohere.com"
DEFAULT_INPUT_TYPE = "search_query"
INPUT_TYPES = ("search_query", "search_document", "classification", "clustering")
BATCH_LIMIT = 96
"""Texts per request the API accepts."""

_ALIASES = {"query": "search_query", "document": "search_document"}

KNOWN_DIMENSIONS: dict[str, int] = {
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
}
"""Native sizes, so no probe call is needed at start-up; other models are probed once."""

INPUT_TOKENS: dict[str, int] = {
    "embed-v4.0": 128_000,
    "embed-english-v3.0": 512,
    "embed-multilingual-v3.0": 512,
    "embed-english-light-v3.0": 512,
    "embed-multilingual-light-v3.0": 512,
}
"""Tokens of a text each model reads; texts are cut to ``CHARS_PER_TOKEN`` characters a
token (of at most ``DEFAULT_MAX_INPUT_TOKENS``) before they are sent."""

_OUTPUT_DIMENSIONS: dict[str, tuple[int, ...]] = {"embed-v4.0": (256, 512, 1024, 1536)}
"""Models that can shorten their vectors, and the sizes they accept."""


def _package_version() -> str:
    try:
        return version("semcache-embed-cohere")
    except PackageNotFoundError:
        return "0"


def normalize_input_type(value: str | None) -> str:
    """A Cohere input type; ``query``/``document`` are accepted for the ``search_`` ones."""
    if value is None or not value.strip():
        return DEFAULT_INPUT_TYPE
    key = value.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in INPUT_TYPES:
        raise SettingsError(
            f"{EMBEDDER_INPUT_TYPE}={value!r} is not a Cohere input type: expected one of "
            + ", ".join(INPUT_TYPES)
        )
    return key


class CohereEmbedder(HTTPEmbedder):
    """Embeddings from Cohere's Embed API (v2).

    The API key is ``api_key``, else ``CO_API_KEY``, else ``COHERE_API_KEY``.
    ``input_type`` defaults to ``search_query``: the cache compares questions with
    questions, so both sides get the same type. ``dimensions`` sets ``output_dimension``
    (embed-v4.0: 256, 512, 1024 or 1536). Batches over 96 texts are split.
    ``timeout`` is per request in seconds; ``retry`` (a full policy) wins over
    ``max_retries``.
    """

    provider = "cohere"
    display_name = "Cohere"
    path = "/v2/embed"
    batch_limit = BATCH_LIMIT
    key_variables = ("CO_API_KEY", "COHERE_API_KEY")
    # Cohere answers 498 for an invalid or expired token.
    auth_statuses = frozenset({401, 403, 498})

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        input_type: str | None = DEFAULT_INPUT_TYPE,
        dimensions: int | None = None,
        base_url: str | None = None,
        max_batch: int = BATCH_LIMIT,
        timeout: float = 10.0,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 4,
        max_input_tokens: int | None = None,
    ) -> None:
        model = model.strip()
        if not model:
            raise ValueError("CohereEmbedder needs a model name")
        key, source = require_api_key(api_key, self.provider, self.display_name, self.key_variables)
        self.api_key = key
        self.input_type = normalize_input_type(input_type)
        native = KNOWN_DIMENSIONS.get(model)
        self._send_dimension = False
        if dimensions is not None:
            allowed = _OUTPUT_DIMENSIONS.get(model)
            if allowed is not None and dimensions not in allowed:
                raise SettingsError(
                    f"{EMBEDDER_DIMENSIONS}={dimensions} is not offered by {model}: expected "
                    + ", ".join(map(str, allowed))
                )
            if allowed is None and native is not None and dimensions != native:
                raise SettingsError(
                    f"{model} always returns {native} dimensions ({EMBEDDER_DIMENSIONS}="
                    f"{dimensions}); shorter vectors need embed-v4.0 or newer"
                )
            # Sent for models that take it and for models this package does not know.
            self._send_dimension = allowed is not None or native is None
        super().__init__(
            model=model,
            base_url=strip_suffix_path(base_url or DEFAULT_BASE_URL, "/v2", "/v1"),
            dimensions=dimensions,
            native_dimension=native,
            max_batch=max_batch,
            timeout=timeout,
            retry=retry or RetryPolicy(max_retries=max_retries),
            max_concurrency=max_concurrency,
            max_input_tokens=max_input_tokens,
            model_input_tokens=INPUT_TOKENS.get(model),
            key_source=source,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CohereEmbedder:
        """Built from ``SEMANTIC_CACHE_EMBEDDER_*`` settings (model, API key, input type,
        dimensions, base URL, retries, timeout)."""
        embedder = cls(
            settings.embedder_model or DEFAULT_MODEL,
            api_key=settings.embedder_api_key,
            input_type=settings.embedder_input_type,
            dimensions=settings.embedder_dimensions,
            base_url=settings.embedder_base_url,
            timeout=settings.embedder_timeout_ms / 1000,
            max_retries=settings.embedder_max_retries,
        )
        if settings.embedder_api_key:
            embedder.key_source = EMBEDDER_API_KEY
        return embedder

    def _id_parts(self) -> list[str]:
        return [f"input={self.input_type}"]

    def _open_transport(self, timeout: float) -> HttpxTransport:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": f"semcache-embed-cohere/{_package_version()}",
            "X-Client-Name": "semcache",
        }
        return HttpxTransport(self.base_url, headers=headers, timeout=timeout)

    def _payload(self, texts: list[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "texts": texts,
            "input_type": self.input_type,
            "embedding_types": ["float"],
        }
        if self._send_dimension:
            payload["output_dimension"] = self.dimensions
        return payload

    def _vectors(self, body: Any, count: int) -> Sequence[Sequence[float]]:
        embeddings = body["embeddings"]
        # v2 groups vectors by type; a v1-style proxy answers with the list itself.
        vectors = embeddings["float"] if isinstance(embeddings, dict) else embeddings
        if not isinstance(vectors, list) or len(vectors) != count:
            raise ValueError(f"expected {count} float embeddings")
        return vectors

    def _model_hint(self, status: int, message: str) -> str:
        lowered = message.lower()
        unknown = any(w in lowered for w in ("not found", "unknown", "does not exist"))
        if status == 404 or ("model" in lowered and unknown):
            return f"check the model name {self.model!r} (for example {DEFAULT_MODEL})"
        return ""
