"""Cohere embedder for semcache: plugin ``cohere`` (``SEMANTIC_CACHE_EMBEDDER_TYPE=cohere``)."""

from semcache._http_embedding import EmbeddingAPIError, EmbeddingAuthError, RetryPolicy
from semcache_embed_cohere._embedder import (
    DEFAULT_BASE_URL,
    DEFAULT_INPUT_TYPE,
    DEFAULT_MODEL,
    INPUT_TYPES,
    KNOWN_DIMENSIONS,
    CohereEmbedder,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_INPUT_TYPE",
    "DEFAULT_MODEL",
    "INPUT_TYPES",
    "KNOWN_DIMENSIONS",
    "CohereEmbedder",
    "EmbeddingAPIError",
    "EmbeddingAuthError",
    "RetryPolicy",
    "__version__",
]

__version__ = "0.1.0"
