"""semcache: a semantic cache for HTTP APIs and LLM traffic."""

from semcache.breaker import CircuitBreaker
from semcache.cache import SemanticCache
from semcache.embedder import (
    BaseEmbedder,
    MicroBatchingEmbedder,
    normalize_rows,
    resolve_dimension,
)
from semcache.errors import (
    CacheUnavailableError,
    EmbedderNotReadyError,
    EmbeddingAPIError,
    EmbeddingAuthError,
    EmbeddingError,
    EmbeddingModelError,
    EmbeddingStalledError,
    EvaluationError,
    MissingAPIKeyError,
    PluginNotFoundError,
    SemcacheError,
    SettingsError,
    StoreSetupError,
    UnsupportedOperationError,
)
from semcache.protocols import Embedder, PartitionIndex, ResponseStore, VectorStore, Verifier
from semcache.settings import Settings
from semcache.singleflight import Flight, SingleFlight
from semcache.text import hash_text, normalize_query, partition_key
from semcache.types import Entry, Hit, Matrix, Vector, VectorMatch

__all__ = [
    "BaseEmbedder",
    "CacheUnavailableError",
    "CircuitBreaker",
    "Embedder",
    "EmbedderNotReadyError",
    "EmbeddingAPIError",
    "EmbeddingAuthError",
    "EmbeddingError",
    "EmbeddingModelError",
    "EmbeddingStalledError",
    "Entry",
    "EvaluationError",
    "Flight",
    "Hit",
    "Matrix",
    "MicroBatchingEmbedder",
    "MissingAPIKeyError",
    "PartitionIndex",
    "PluginNotFoundError",
    "ResponseStore",
    "SemanticCache",
    "SemcacheError",
    "Settings",
    "SettingsError",
    "SingleFlight",
    "StoreSetupError",
    "UnsupportedOperationError",
    "Vector",
    "VectorMatch",
    "VectorStore",
    "Verifier",
    "__version__",
    "hash_text",
    "normalize_query",
    "normalize_rows",
    "partition_key",
    "resolve_dimension",
]

__version__ = "0.1.0"
