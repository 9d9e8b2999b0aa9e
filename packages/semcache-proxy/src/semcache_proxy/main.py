"""Module-level app for ``uvicorn semcache_proxy.main:app`` (settings from the environment)."""

from semcache_proxy._app import create_semantic_cache_proxy_app

__all__ = ["app"]

app = create_semantic_cache_proxy_app()
