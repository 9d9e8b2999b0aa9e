"""The embedded default stores (in-process, optionally persisted to a file)."""

from semcache.stores.memory_responses import MemoryResponseStore
from semcache.stores.memory_vectors import MemoryVectorStore

__all__ = ["MemoryResponseStore", "MemoryVectorStore"]
