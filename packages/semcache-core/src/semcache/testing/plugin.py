"""Entry-point plugin for the test embedder (``testing-hash``)."""

from __future__ import annotations

from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache.testing.embedders import HashingTestEmbedder

__all__ = ["semcache_create_embedder"]


@hookimpl
def semcache_create_embedder(name: str, settings: Settings) -> HashingTestEmbedder | None:
    if name != "testing-hash":
        return None
    return HashingTestEmbedder(settings.embedder_dimensions or 256)
