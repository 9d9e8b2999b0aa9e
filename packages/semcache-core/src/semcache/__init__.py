"""semcache: a semantic cache for HTTP APIs and LLM traffic."""

from semcache.breaker import CircuitBreaker
from semcache.cache import SemanticCache
from semcache.embedder import BaseEmbedder, MicroBatchingEmbedder, normalize_rows
from semcache.errors import PluginNotFoundError, SemcacheError, SettingsError
from semcache.protocols import Embedder, ResponseStore, VectorStore, Verifier
from semcache.settings import Settings
from semcache.singleflight import Flight, SingleFlight
from semcache.text import hash_text, normalize_query, partition_key
from semcache.types import Entry, Hit, Matrix, Vector, VectorMatch

__all__ = [
    "BaseEmbedder",
    "CircuitBreaker",
    "Embedder",
    "Entry",
    "Flight",
    "Hit",
    "Matrix",
    "MicroBatchingEmbedder",
    "PluginNotFoundError",
    "ResponseStore",
    "SemanticCache",
    "SemcacheError",
    "Settings",
    "SettingsError",
    "SingleFlight",
    "Vector",
    "VectorMatch",
    "VectorStore",
    "Verifier",
    "__version__",
    "hash_text",
    "normalize_query",
    "normalize_rows",
    "partition_key",
]

__version__ = "0.1.0"
