"""Ollama embedder for semcache: plugin ``ollama`` (``SEMANTIC_CACHE_EMBEDDER_TYPE=ollama``)."""

from semcache_embed_http import RetryPolicy
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
    "OllamaEmbedder",
    "RetryPolicy",
    "__version__",
]

__version__ = "0.1.0"
