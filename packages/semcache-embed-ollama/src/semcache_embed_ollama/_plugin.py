"""Entry point ``embedder.ollama`` (group ``semcache``)."""

from __future__ import annotations

from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache_embed_ollama._embedder import OllamaEmbedder

__all__ = ["semcache_create_embedder"]


@hookimpl
def semcache_create_embedder(name: str, settings: Settings) -> OllamaEmbedder | None:
    if name != "ollama":
        return None
    embedder = OllamaEmbedder.from_settings(settings)
    # Learn an unknown model's size now (one API call; nothing when it is known): plugin
    # creation runs in a worker thread, so the event loop does not wait for it.
    embedder.probe_dimension_blocking()
    return embedder
