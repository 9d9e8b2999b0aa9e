"""sentence-transformers embedder for semcache (plugin ``huggingface``)."""

from semcache_embed_hf._backend import Backend, BackendChoice, resolve_backend
from semcache_embed_hf._embedder import CHARS_PER_TOKEN, HuggingFaceEmbedder
from semcache_embed_hf._source import DEFAULT_MODEL

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MODEL",
    "Backend",
    "BackendChoice",
    "HuggingFaceEmbedder",
    "__version__",
    "resolve_backend",
]

__version__ = "0.1.0"
