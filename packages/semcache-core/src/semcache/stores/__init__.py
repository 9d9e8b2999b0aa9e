"""The embedded default stores (in-process, optionally persisted to a file)."""

from semcache.stores._journal import install_sigterm_flush
from semcache.stores.memory_responses import MemoryResponseStore
from semcache.stores.memory_vectors import MemoryVectorStore

__all__ = ["MemoryResponseStore", "MemoryVectorStore", "install_sigterm_flush"]
