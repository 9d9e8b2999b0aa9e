"""Per-route policies and upstreams from the configuration file, through the proxy over a
real server: each route's threshold and tenant values, and each prefix's upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.polling import wait_stores
from tests.support.servers import serve_asgi


def cache_with(tmp_path: Path, toml: str, **settings: Any) -> SemanticCache:
    path = tmp_path / "semcache.toml"
    path.write_text(toml)
    base = Settings.from_env({"SEMANTIC_CACHE_CONFIG": str(path)}).replace(**settings)
    return SemanticCache(base, embedder=HashingTestEmbedder(), threshold=0.8, verifier=None)


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": question}], **extra}


def test_each_route_has_its_own_threshold(upstream: str, tmp_path: Path) -> None:
    cache = cache_with(
        tmp_path,
        '[[routes]]\npath = "/echo/strict/*"\nthreshold = 0.95\n\n[[routes]]\npath = "/echo/*"\n',
    )
    question, paraphrase = "How do I rotate my API key?", "How can I rotate my API key?"
    app = create_semantic_cache_proxy_app(upstream, cache)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        for stores, path in enumerate(("/echo/strict/chat", "/echo/loose/chat"), start=1):
            assert client.post(path, json=chat(question)).headers["x-semcache"] == "miss"
            wait_stores(cache, stores)
        # The paraphrase scores about 0.86: under the strict route's bar only.
        strict = client.post("/echo/strict/chat", json=chat(paraphrase))
        loose = client.post("/echo/loose/chat", json=chat(paraphrase))
    assert strict.headers["x-semcache"] == "miss"
    assert loose.headers["x-semcache"] == "hit"


def test_route_tenant_values_split_the_partition_next_to_the_credential(
    upstream: str, tmp_path: Path
) -> None:
    cache = cache_with(
        tmp_path,
        '[[routes]]\npath = "*/chat/completions"\n'
        'tenant_headers = ["X-Org-Id"]\ntenant_fields = ["user"]\n',
        admin_token="t",
    )
    alice = {"authorization": "Bearer alice"}
    app = create_semantic_cache_proxy_app(upstream, cache)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:

        def ask(headers: dict[str, str], user: str | None = "u1") -> str:
            extra = {"user": user} if user else {}
            body = chat("What is our refund policy?", **extra)
            response = client.post("/v1/chat/completions", json=body, headers=headers)
            return response.headers["x-semcache"]

        assert ask({**alice, "x-org-id": "acme"}) == "miss"
        wait_stores(cache, 1)
        assert ask({**alice, "x-org-id": "acme"}) == "hit"
        assert ask({**alice, "x-org-id": "globex"}) == "miss"  # another tenant header
        assert ask({**alice, "x-org-id": "acme"}, user="u2") == "miss"  # another field
        assert ask(alice) == "miss"  # no tenant value is a tenant of its own
        # The same tenant values with another credential: the credential stays.
        assert ask({"authorization": "Bearer bob", "x-org-id": "acme"}) == "miss"
        # Tenant values are tags: the operator flushes a tenant by its value.
        flushed = client.post(
            "/_semcache/admin/flush",
            json={"tenant": "acme"},
            headers={"authorization": "Bearer t"},
        )
        assert flushed.json()["flushed"] >= 1
        assert ask({**alice, "x-org-id": "acme"}) == "miss"


def test_a_prefix_goes_to_its_own_upstream_in_its_own_partitions(
    upstream: str, fake: FakeLLM, tmp_path: Path
) -> None:
    second, third = FakeLLM(), FakeLLM()
    question = chat("How do I export my data?")
    with serve_asgi(second.app) as second_url, serve_asgi(third.app) as third_url:
        one = cache_with(tmp_path, f'[upstreams]\n"/other" = "{second_url}/v1"\n')
        with serve_asgi(create_semantic_cache_proxy_app(upstream, one)) as url:
            # Under the prefix: the second upstream, the prefix taken off the path.
            response = httpx.post(url + "/other/chat/completions", json=question)
            assert response.status_code == 200
            assert (second.calls, fake.calls) == (1, 0)
            assert httpx.post(url + "/v1/chat/completions", json=question).status_code == 200
            assert (second.calls, fake.calls) == (1, 1)
            wait_stores(one, 2)
            hit = httpx.post(url + "/other/chat/completions", json=question)
            assert hit.headers["x-semcache"] == "hit"
        # The same prefix sent elsewhere, on the same stores: never the first one's answer;
        # sent to the same upstream again: the first one's answer.
        found = {}
        for name, target in (("elsewhere", third_url), ("same", second_url)):
            settings = cache_with(tmp_path, f'[upstreams]\n"/other" = "{target}/v1"\n').settings
            shared = SemanticCache(
                settings,
                embedder=one.embedder,
                vector_store=one.vector_store,
                response_store=one.response_store,
                verifier=None,
            )
            with serve_asgi(create_semantic_cache_proxy_app(upstream, shared)) as url:
                found[name] = httpx.post(url + "/other/chat/completions", json=question)
    assert found["elsewhere"].headers["x-semcache"] == "miss"
    assert third.calls == 1
    assert found["same"].headers["x-semcache"] == "hit"
