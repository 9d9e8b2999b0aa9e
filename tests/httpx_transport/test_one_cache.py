"""One cache, any entry point: the proxy and the SDK transport share PostgreSQL + Redis.

An answer stored through the proxy is a hit for a paraphrase asked through the OpenAI
SDK calling the upstream directly with the transport, and the other way round: both put
the same destination (the proxy's upstream; the request URL's origin, or the base given
in ``upstreams``) and the same path in the partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import pytest

import semcache_httpx
from semcache import SemanticCache, Settings
from semcache.sync import loop_thread
from semcache.testing import HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from semcache_store_pgvector import PgVectorStore
from semcache_store_redis import RedisResponseStore
from tests.support.polling import wait_until
from tests.support.servers import serve_asgi

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

QUESTION = "how do I rotate my api keys safely"
PARAPHRASE = "how do I rotate my api keys safely please"
SECOND = "what is the boiling point of water at sea level"
SECOND_PARAPHRASE = "what is the boiling point of water at sea level please"


def shared_settings(pg_uri: str, redis_uri: str, prefix: str) -> Settings:
    return Settings.from_env(
        {},
        pg_uri=pg_uri,
        redis_uri=redis_uri,
        prefix=prefix,
        embedder_type="testing-hash",
        threshold=0.8,
        verifier="none",
    )


@contextmanager
def proxy_to(upstream: str, settings: Settings) -> Iterator[tuple[str, Any]]:
    """A proxy with its own cache on the shared stores; yields (its URL, the app)."""
    app = create_semantic_cache_proxy_app(upstream, settings=settings)
    with serve_asgi(app) as url:
        wait_until(
            lambda: httpx.get(url + "/readyz").status_code == 200,
            timeout=60,
            what="the proxy's cache is ready",
        )
        yield url, app


@pytest.fixture
def direct_cache(pg_uri: str, shared_redis: str, redis_prefix: str) -> Iterator[SemanticCache]:
    """The transport's cache: another instance on the same PostgreSQL + Redis."""
    cache = SemanticCache(
        shared_settings(pg_uri, shared_redis, redis_prefix), embedder=HashingTestEmbedder()
    )
    yield cache
    loop_thread().run(cache.close(), 30)


def sdk(base_url: str, http_client: Any = None) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-shared", base_url=base_url, max_retries=0, http_client=http_client
    )


def ask(client: openai.OpenAI, text: str, stream: bool = False) -> tuple[str, str]:
    messages = [{"role": "user", "content": text}]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=messages, stream=stream
    )
    if stream:
        answer = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        answer = raw.parse().choices[0].message.content or ""
    return raw.headers["x-semcache"], answer


def test_asked_through_the_proxy_then_paraphrased_through_the_sdk_is_a_hit(
    upstream: str,
    fake: FakeLLM,
    pg_uri: str,
    shared_redis: str,
    redis_prefix: str,
    direct_cache: SemanticCache,
) -> None:
    settings = shared_settings(pg_uri, shared_redis, redis_prefix)
    with (
        proxy_to(upstream, settings) as (proxy_url, app),
        semcache_httpx.httpx_client(direct_cache, trust_env=False) as http,
    ):
        via_proxy = sdk(proxy_url + "/v1")
        direct = sdk(upstream + "/v1", http)

        for stream in (False, True):
            status, first = ask(via_proxy, QUESTION, stream)
            assert status == "miss"
            stores = 2 if stream else 1
            wait_until(
                lambda n=stores: app.cache.counters["stores"] == n,
                timeout=10,
                what="the proxy stored the answer",
            )
            assert ask(direct, PARAPHRASE, stream) == ("hit", first)

            # The other way: stored by the transport, a hit through the proxy.
            status, second = ask(direct, SECOND, stream)
            assert status == "miss"
            assert ask(via_proxy, SECOND_PARAPHRASE, stream) == ("hit", second)
    assert fake.calls == 4  # two questions, streamed and not
    # Both entry points really used the shared stores.
    assert isinstance(direct_cache.vector_store, PgVectorStore)
    assert isinstance(direct_cache.response_store, RedisResponseStore)


def test_a_proxy_upstream_with_a_path_is_named_in_upstreams(
    upstream: str,
    fake: FakeLLM,
    pg_uri: str,
    shared_redis: str,
    redis_prefix: str,
    direct_cache: SemanticCache,
) -> None:
    settings = shared_settings(pg_uri, shared_redis, redis_prefix)
    base = upstream + "/v1"
    named = semcache_httpx.httpx_client(
        direct_cache, trust_env=False, cache_options={"upstreams": [base]}
    )
    unnamed = semcache_httpx.httpx_client(direct_cache, trust_env=False)
    with proxy_to(base, settings) as (proxy_url, app), named, unnamed:
        status, first = ask(sdk(proxy_url), QUESTION)  # the proxy adds /v1 itself
        assert status == "miss"
        wait_until(
            lambda: app.cache.counters["stores"] == 1, timeout=10, what="the proxy stored it"
        )
        # Without the base: destination http://host:port, path /v1/chat/completions,
        # not the proxy's (http://host:port/v1, /chat/completions): another partition.
        assert ask(sdk(base, unnamed), PARAPHRASE)[0] == "miss"
        assert ask(sdk(base, named), PARAPHRASE) == ("hit", first)
