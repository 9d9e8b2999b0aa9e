"""sentence-transformers embedder for semcache (plugin ``huggingface``)."""

from semcache_embed_hf._embedder import CHARS_PER_TOKEN, Backend, HuggingFaceEmbedder
from semcache_embed_hf._source import DEFAULT_MODEL

__all__ = ["CHARS_PER_TOKEN", "DEFAULT_MODEL", "Backend", "HuggingFaceEmbedder", "__version__"]

__version__ = "0.1.0"
