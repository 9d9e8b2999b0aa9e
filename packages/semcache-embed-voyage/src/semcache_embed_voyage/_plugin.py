"""Entry point ``embedder.voyage`` (group ``semcache``)."""

from __future__ import annotations

from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache_embed_voyage._embedder import VoyageEmbedder

__all__ = ["semcache_create_embedder"]


@hookimpl
def semcache_create_embedder(name: str, settings: Settings) -> VoyageEmbedder | None:
    if name != "voyage":
        return None
    embedder = VoyageEmbedder.from_settings(settings)
    # Learn an unknown model's size now (one API call; nothing when it is known): plugin
    # creation runs in a worker thread, so the event loop does not wait for it.
    embedder.probe_dimension_blocking()
    return embedder
