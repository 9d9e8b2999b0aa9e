"""`OllamaEmbedder`: vectors from an Ollama server's ``POST /api/embed``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from semcache.env import EMBEDDER_API_KEY
from semcache.settings import Settings
from semcache_embed_http import (
    HTTPEmbedder,
    HttpxTransport,
    RetryPolicy,
    resolve_api_key,
    strip_suffix_path,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "KNOWN_DIMENSIONS", "OllamaEmbedder"]

DEFAULT_MODEL = "nomic-embed-text"
DEFAULT_BASE_URL = "http://127.0.0.1:11434"
DEFAULT_MAX_BATCH = 32
"""Ollama sets no limit on texts per request; 32 matches the cache's own micro-batches and
keeps one request on a CPU-only server well inside a timeout."""

KNOWN_DIMENSIONS: dict[str, int] = {
    "nomic-embed-text:latest": 768,
    "nomic-embed-text:v1.5": 768,
    "mxbai-embed-large:latest": 1024,
    "mxbai-embed-large:335m": 1024,
    "all-minilm:latest": 384,
    "all-minilm:22m": 384,
    "all-minilm:33m": 384,
    "bge-m3:latest": 1024,
    "embeddinggemma:latest": 768,
}
"""Native sizes of common embedding models (full ``name:tag``), so no probe call is needed
at start-up; any other model is probed once."""

INPUT_TOKENS: dict[str, int] = {
    "nomic-embed-text": 8192,
    "mxbai-embed-large": 512,
    "all-minilm": 512,
    "bge-m3": 8192,
    "embeddinggemma": 2048,
}
"""Tokens of a text each model family reads (by name, any tag); texts are cut to
``CHARS_PER_TOKEN`` characters a token before they are sent. Others: the default bound."""


def _package_version() -> str:
    try:
        return version("semcache-embed-ollama")
    except PackageNotFoundError:
        return "0"


def full_model_name(model: str) -> str:
    """``name:tag``, with Ollama's implicit ``:latest`` spelled out."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


def base_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The server named by ``OLLAMA_HOST`` (``host``, ``host:port`` or a URL), as Ollama's
    own CLI reads it; ``None`` when unset."""
    raw = (os.environ if environ is None else environ).get("OLLAMA_HOST", "").strip()
    if not raw:
        return None
    url = raw if "://" in raw else f"http://{raw}"
    parts = urlsplit(url)
    if parts.port is None and parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        default_port = 443 if parts.scheme == "https" else 11434
        url = f"{parts.scheme}://{host}:{default_port}{parts.path}"
    return url


class OllamaEmbedder(HTTPEmbedder):
    """Embeddings from Ollama (``POST /api/embed``), local or remote.

    ``base_url`` defaults to ``OLLAMA_HOST`` when set, else ``http://127.0.0.1:11434``.
    ``dimensions`` asks the server for shortened vectors (models and Ollama versions that
    support it). ``api_key`` (or ``OLLAMA_API_KEY``) is sent as a bearer token, for a
    server behind an authenticating proxy. ``keep_alive`` (``"30m"``, ``"-1"``) keeps the
    model loaded between calls, so an idle spell does not turn the next lookup into a
    model load. ``timeout`` is per request in seconds; ``retry`` (a full policy) wins over
    ``max_retries``.
    """

    provider = "ollama"
    display_name = "Ollama"
    path = "/api/embed"
    batch_limit = 2048
    key_variables = ("OLLAMA_API_KEY",)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        base_url: str | None = None,
        dimensions: int | None = None,
        api_key: str | None = None,
        keep_alive: str | int | None = None,
        truncate: bool = True,
        options: Mapping[str, Any] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        timeout: float = 10.0,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 4,
        max_input_tokens: int | None = None,
    ) -> None:
        model = model.strip()
        if not model:
            raise ValueError("OllamaEmbedder needs a model name")
        url = base_url or base_url_from_env() or DEFAULT_BASE_URL
        key, source = resolve_api_key(api_key, "the api_key argument", self.key_variables)
        self.api_key = key
        self.keep_alive = keep_alive
        self.truncate = truncate
        self.options = dict(options) if options else None
        super().__init__(
            model=model,
            base_url=strip_suffix_path(url, "/api", "/v1"),
            dimensions=dimensions,
            native_dimension=None if dimensions else KNOWN_DIMENSIONS.get(full_model_name(model)),
            max_batch=max_batch,
            timeout=timeout,
            retry=retry or RetryPolicy(max_retries=max_retries),
            max_concurrency=max_concurrency,
            max_input_tokens=max_input_tokens,
            model_input_tokens=INPUT_TOKENS.get(full_model_name(model).rsplit(":", 1)[0]),
            key_source=source,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaEmbedder:
        """Built from ``SEMANTIC_CACHE_EMBEDDER_*`` settings (model, dimensions, base URL,
        API key, retries, timeout)."""
        embedder = cls(
            settings.embedder_model or DEFAULT_MODEL,
            base_url=settings.embedder_base_url,
            dimensions=settings.embedder_dimensions,
            api_key=settings.embedder_api_key,
            timeout=settings.embedder_timeout_ms / 1000,
            max_retries=settings.embedder_max_retries,
        )
        if settings.embedder_api_key:
            embedder.key_source = EMBEDDER_API_KEY
        return embedder

    def _id_model(self) -> str:
        # "nomic-embed-text" and "nomic-embed-text:latest" are one model to Ollama.
        return full_model_name(self.model)

    def _open_transport(self, timeout: float) -> HttpxTransport:
        headers = {"User-Agent": f"semcache-embed-ollama/{_package_version()}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return HttpxTransport(self.base_url, headers=headers, timeout=timeout)

    def _payload(self, texts: list[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions
        if not self.truncate:
            payload["truncate"] = False
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        if self.options:
            payload["options"] = self.options
        return payload

    def _vectors(self, body: Any, count: int) -> Sequence[Sequence[float]]:
        vectors = body["embeddings"]
        if not isinstance(vectors, list) or len(vectors) != count:
            raise ValueError(f"expected {count} embeddings")
        return vectors

    def _model_hint(self, status: int, message: str) -> str:
        lowered = message.lower()
        if status == 404 and "not found" in lowered:
            return f"pull the model first: ollama pull {self.model}"
        if "does not support" in lowered and "embed" in lowered:
            return f"{self.model} is not an embedding model; try {DEFAULT_MODEL}"
        return ""
