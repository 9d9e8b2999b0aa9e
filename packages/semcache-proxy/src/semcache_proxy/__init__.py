"""semcache as a reverse proxy: a semantic cache in front of any LLM or HTTP API."""

from typing import TYPE_CHECKING, Any

from semcache_proxy.settings import ProxySettings

if TYPE_CHECKING:
    from semcache_proxy._app import SemanticCacheProxy, create_semantic_cache_proxy_app

__all__ = ["ProxySettings", "SemanticCacheProxy", "create_semantic_cache_proxy_app"]


def __getattr__(name: str) -> Any:
    # The app and its web stack load on first use: discovering the settings stays cheap.
    if name in __all__:
        from semcache_proxy import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
