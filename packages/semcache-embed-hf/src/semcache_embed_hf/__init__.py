"""sentence-transformers embedder for semcache (plugin ``huggingface``)."""

from semcache_embed_hf._embedder import Backend, HuggingFaceEmbedder
from semcache_embed_hf._source import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "Backend", "HuggingFaceEmbedder", "__version__"]

__version__ = "0.1.0"
