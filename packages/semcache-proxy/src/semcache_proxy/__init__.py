"""semcache as a reverse proxy: a semantic cache in front of any LLM or HTTP API."""

from semcache_proxy._app import SemanticCacheProxy, create_semantic_cache_proxy_app

__all__ = ["SemanticCacheProxy", "create_semantic_cache_proxy_app"]
