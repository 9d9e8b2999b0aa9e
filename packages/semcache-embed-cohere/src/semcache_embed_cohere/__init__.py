"""Cohere embedder for semcache: plugin ``cohere`` (``SEMANTIC_CACHE_EMBEDDER_TYPE=cohere``)."""

from semcache_embed_cohere._embedder import (
    DEFAULT_BASE_URL,
    DEFAULT_INPUT_TYPE,
    DEFAULT_MODEL,
    INPUT_TYPES,
    KNOWN_DIMENSIONS,
    CohereEmbedder,
)
from semcache_embed_http import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_INPUT_TYPE",
    "DEFAULT_MODEL",
    "INPUT_TYPES",
    "KNOWN_DIMENSIONS",
    "CohereEmbedder",
    "RetryPolicy",
    "__version__",
]

__version__ = "0.1.0"
