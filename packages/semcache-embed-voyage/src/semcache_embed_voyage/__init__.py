"""Voyage AI embedder for semcache: plugin ``voyage`` (``SEMANTIC_CACHE_EMBEDDER_TYPE=voyage``)."""

from semcache_embed_http import RetryPolicy
from semcache_embed_voyage._embedder import (
    DEFAULT_BASE_URL,
    DEFAULT_INPUT_TYPE,
    DEFAULT_MODEL,
    KNOWN_DIMENSIONS,
    VoyageEmbedder,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_INPUT_TYPE",
    "DEFAULT_MODEL",
    "KNOWN_DIMENSIONS",
    "RetryPolicy",
    "VoyageEmbedder",
    "__version__",
]

__version__ = "0.1.0"
