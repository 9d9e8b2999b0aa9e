"""OpenAI and OpenAI-compatible embedding APIs for semcache (plugin ``openai``)."""

from semcache_embed_openai._embedder import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    ModelInfo,
    OpenAIEmbedder,
)

__all__ = ["DEFAULT_MODEL", "KNOWN_MODELS", "ModelInfo", "OpenAIEmbedder", "__version__"]

__version__ = "0.1.0"
