"""/readyz tells an orchestrator the truth about the cache, and a probe flood costs nothing."""

from __future__ import annotations

import httpx

from semcache import SemanticCache
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import FlakyStore, HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.polling import wait_until
from tests.support.servers import serve_asgi


def test_an_open_breaker_makes_the_proxy_unready_until_it_closes(upstream):
    cache = SemanticCache(embedder=HashingTestEmbedder(), verifier=None, breaker_cooldown_ms=60_000)
    app = create_semantic_cache_proxy_app(upstream, cache)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready")
        for _ in range(cache.settings.breaker_failures):
            cache.breakers["embedder"].record_failure("stuck")
        wait_until(lambda: client.get("/readyz").status_code == 503, timeout=5, what="unready")
        body = client.get("/readyz").json()
        assert body["status"] == "degraded" and body["breakers"]["embedder"] == "open"
        cache.breakers["embedder"].record_success()
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5, what="ready again")
        assert client.get("/readyz").json()["breakers"]["embedder"] == "closed"


def test_a_probe_flood_pings_the_stores_about_once_a_second(upstream):
    vectors, responses = FlakyStore(MemoryVectorStore(256)), FlakyStore(MemoryResponseStore())
    cache = SemanticCache(
        embedder=HashingTestEmbedder(),
        vector_store=vectors,
        response_store=responses,
        verifier=None,
    )
    app = create_semantic_cache_proxy_app(upstream, cache)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready")
        before = vectors.calls + responses.calls
        for _ in range(50):
            assert client.get("/readyz").status_code == 200
        # 50 probes in well under a few seconds: a handful of pings, not 100.
        assert vectors.calls + responses.calls - before <= 10
