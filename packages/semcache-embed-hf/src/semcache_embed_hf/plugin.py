"""Entry-point plugin ``embedder.huggingface``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from semcache.plugins import hookimpl
from semcache.settings import Settings

if TYPE_CHECKING:
    from semcache_embed_hf._embedder import HuggingFaceEmbedder

__all__ = ["semcache_create_embedder"]


@hookimpl
def semcache_create_embedder(name: str, settings: Settings) -> HuggingFaceEmbedder | None:
    if name != "huggingface":
        return None
    from semcache_embed_hf._embedder import HuggingFaceEmbedder

    return HuggingFaceEmbedder.from_settings(settings)
