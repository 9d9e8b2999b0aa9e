"""Entry-point plugin ``embedder.openai``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from semcache.plugins import hookimpl
from semcache.settings import Settings

if TYPE_CHECKING:
    from semcache_embed_openai._embedder import OpenAIEmbedder

__all__ = ["semcache_create_embedder"]


@hookimpl
def semcache_create_embedder(name: str, settings: Settings) -> OpenAIEmbedder | None:
    if name != "openai":
        return None
    from semcache_embed_openai._embedder import OpenAIEmbedder

    embedder = OpenAIEmbedder.from_settings(settings)
    # Learn an unknown model's size now (one API call; nothing when it is known): plugin
    # creation runs in a worker thread, so the event loop does not wait for it.
    embedder.probe_dimension_blocking()
    return embedder
