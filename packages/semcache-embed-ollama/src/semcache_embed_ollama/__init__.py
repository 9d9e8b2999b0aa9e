"""Ollama embedder for semcache: plugin ``ollama`` (``SEMANTIC_CACHE_EMBEDDER_TYPE=ollama``)."""

from semcache._http_embedding import EmbeddingAPIError, EmbeddingAuthError, RetryPolicy
from semcache_embed_ollama._embedder import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    KNOWN_DIMENSIONS,
    OllamaEmbedder,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "KNOWN_DIMENSIONS",
    "EmbeddingAPIError",
    "EmbeddingAuthError",
    "OllamaEmbedder",
    "RetryPolicy",
    "__version__",
]

__version__ = "0.1.0"
