"""Entry point ``embedder.cohere`` (group ``semcache``)."""

from __future__ import annotations

from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache_embed_cohere._embedder import CohereEmbedder

__all__ = ["semcache_create_embedder"]


@hookimpl
def semcache_create_embedder(name: str, settings: Settings) -> CohereEmbedder | None:
    if name != "cohere":
        return None
    embedder = CohereEmbedder.from_settings(settings)
    # Learn an unknown model's size now: plugin creation runs in a worker thread, so the
    # one probe call does not block the event loop.
    _ = embedder.dimension
    return embedder
