"""`VoyageEmbedder`: vectors from the Voyage AI embeddings API (``POST /v1/embeddings``)."""

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
    "KNOWN_DIMENSIONS",
    "VoyageEmbedder",
]

DEFAULT_MODEL = "voyage-3.5"
DEFAULT_BASE_URL = "https://api.voyageai.com"
DEFAULT_INPUT_TYPE = "query"
BATCH_LIMIT = 1000
"""Texts per request the API accepts."""

_INPUT_TYPES = {
    "query": "query",
    "search_query": "query",
    "document": "document",
    "search_document": "document",
    "none": None,
    "null": None,
}

KNOWN_DIMENSIONS: dict[str, int] = {
    "voyage-4-large": 1024,
    "voyage-4": 1024,
    "voyage-4-lite": 1024,
    "voyage-3-large": 1024,
    "voyage-3.5": 1024,
    "voyage-3.5-lite": 1024,
    "voyage-code-3": 1024,
    "voyage-3": 1024,
    "voyage-3-lite": 512,
    "voyage-finance-2": 1024,
    "voyage-law-2": 1024,
    "voyage-multilingual-2": 1024,
    "voyage-code-2": 1536,
    "voyage-2": 1024,
    "voyage-large-2": 1536,
}
"""Native sizes, so no probe call is needed at start-up; other models are probed once."""

_FLEXIBLE = (
    "voyage-4-large",
    "voyage-4",
    "voyage-4-lite",
    "voyage-3-large",
    "voyage-3.5",
    "voyage-3.5-lite",
    "voyage-code-3",
)
_OUTPUT_DIMENSIONS = (256, 512, 1024, 2048)
"""What the models that can shorten (or lengthen) their vectors accept."""

_TOKEN_LIMITS: dict[str, int] = {
    "voyage-4-lite": 1_000_000,
    "voyage-3.5-lite": 1_000_000,
    "voyage-3-lite": 1_000_000,
    "voyage-4": 320_000,
    "voyage-3.5": 320_000,
    "voyage-3": 320_000,
    "voyage-2": 320_000,
}
_DEFAULT_TOKEN_LIMIT = 120_000
"""Total tokens per request (the documented limit; the larger models allow 120K)."""

_TEXT_OVERHEAD_BYTES = 32
"""Budget per text for the prompt Voyage prepends for an input type and special tokens."""

INPUT_TOKENS: dict[str, int] = {"voyage-2": 4000, "voyage-large-2": 16_000, "voyage-code-2": 16_000}
"""Tokens of a text each model reads where under 32K (the newer models' context); texts
are cut to ``CHARS_PER_TOKEN`` characters a token (of at most ``DEFAULT_MAX_INPUT_TOKENS``)
before they are sent."""


def _package_version() -> str:
    try:
        return version("semcache-embed-voyage")
    except PackageNotFoundError:
        return "0"


def normalize_input_type(value: str | None) -> str | None:
    """``query``, ``document`` or ``None`` (no prompt prepended); Cohere's
    ``search_query``/``search_document`` spellings are accepted too."""
    if value is None:
        return None
    key = value.strip().lower()
    if not key:
        return None
    if key not in _INPUT_TYPES:
        raise SettingsError(
            f"{EMBEDDER_INPUT_TYPE}={value!r} is not a Voyage input type: expected query, "
            "document or none"
        )
    return _INPUT_TYPES[key]


class VoyageEmbedder(HTTPEmbedder):
    """Embeddings from Voyage AI.

    The API key is ``api_key``, else ``VOYAGE_API_KEY``. ``input_type`` defaults to
    ``query``: the cache compares questions with questions, so both sides get the same
    prompt (``None`` sends none). ``dimensions`` sets ``output_dimension`` (256, 512,
    1024 or 2048 on the models that offer it). Batches are split at 1,000 texts and at
    the model's token budget per request, counted conservatively as UTF-8 bytes.
    ``timeout`` is per request in seconds; ``retry`` (a full policy) wins over
    ``max_retries``.
    """

    provider = "voyage"
    display_name = "Voyage AI"
    path = "/v1/embeddings"
    batch_limit = BATCH_LIMIT
    key_variables = ("VOYAGE_API_KEY",)

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
            raise ValueError("VoyageEmbedder needs a model name")
        key, source = require_api_key(api_key, self.provider, self.display_name, self.key_variables)
        self.api_key = key
        self.input_type = normalize_input_type(input_type)
        native = KNOWN_DIMENSIONS.get(model)
        if dimensions is not None and native is not None:
            if model in _FLEXIBLE and dimensions not in _OUTPUT_DIMENSIONS:
                raise SettingsError(
                    f"{EMBEDDER_DIMENSIONS}={dimensions} is not offered by {model}: expected "
                    + ", ".join(map(str, _OUTPUT_DIMENSIONS))
                )
            if model not in _FLEXIBLE and dimensions != native:
                raise SettingsError(
                    f"{model} always returns {native} dimensions ({EMBEDDER_DIMENSIONS}="
                    f"{dimensions}); other sizes need a model such as {DEFAULT_MODEL}"
                )
        self._send_dimension = dimensions is not None and (model in _FLEXIBLE or native is None)
        super().__init__(
            model=model,
            base_url=strip_suffix_path(base_url or DEFAULT_BASE_URL, "/v1"),
            dimensions=dimensions,
            native_dimension=native,
            max_batch=max_batch,
            max_batch_bytes=_TOKEN_LIMITS.get(model, _DEFAULT_TOKEN_LIMIT),
            batch_overhead_bytes=_TEXT_OVERHEAD_BYTES,
            timeout=timeout,
            retry=retry or RetryPolicy(max_retries=max_retries),
            max_concurrency=max_concurrency,
            max_input_tokens=max_input_tokens,
            model_input_tokens=INPUT_TOKENS.get(model, 32_000),
            key_source=source,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> VoyageEmbedder:
        """Built from ``SEMANTIC_CACHE_EMBEDDER_*`` settings (model, API key, input type,
        dimensions, base URL, retries, timeout)."""
        embedder = cls(
            settings.embedder_model or DEFAULT_MODEL,
            api_key=settings.embedder_api_key,
            input_type=(
                DEFAULT_INPUT_TYPE
                if settings.embedder_input_type is None
                else settings.embedder_input_type
            ),
            dimensions=settings.embedder_dimensions,
            base_url=settings.embedder_base_url,
            timeout=settings.embedder_timeout_ms / 1000,
            max_retries=settings.embedder_max_retries,
        )
        if settings.embedder_api_key:
            embedder.key_source = EMBEDDER_API_KEY
        return embedder

    def _id_parts(self) -> list[str]:
        return [f"input={self.input_type or 'none'}"]

    def _open_transport(self, timeout: float) -> HttpxTransport:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": f"semcache-embed-voyage/{_package_version()}",
        }
        return HttpxTransport(self.base_url, headers=headers, timeout=timeout)

    def _payload(self, texts: list[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            "input_type": self.input_type,
        }
        if self._send_dimension:
            payload["output_dimension"] = self.dimensions
        return payload

    def _vectors(self, body: Any, count: int) -> Sequence[Sequence[float]]:
        data = body["data"]
        if not isinstance(data, list) or len(data) != count:
            raise ValueError(f"expected {count} embeddings")
        # Each item carries its input's index; do not rely on the list order.
        if all("index" in item for item in data):
            data = sorted(data, key=lambda item: int(item["index"]))
        return [item["embedding"] for item in data]

    def _model_hint(self, status: int, message: str) -> str:
        lowered = message.lower()
        if "model" in lowered and any(
            w in lowered for w in ("not found", "not supported", "unknown", "invalid")
        ):
            return f"check the model name {self.model!r} (for example {DEFAULT_MODEL})"
        return ""

    def _status_hint(self, status: int, message: str) -> str:
        lowered = message.lower()
        if "token" in lowered and ("limit" in lowered or "exceed" in lowered):
            return "a batch exceeded the model's token limit; send fewer or shorter texts"
        return ""
