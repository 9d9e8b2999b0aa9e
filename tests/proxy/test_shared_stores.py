"""Two proxy processes sharing one PostgreSQL + Redis cache."""

import os
import uuid

import httpx
import pytest

from tests.support.pg_servers import create_database, drop_database
from tests.support.polling import wait_until
from tests.support.redis_servers import SHARED_REDIS_URI, delete_prefix

from .processes import start_proxy, stop_proxy

CHAT = "/v1/chat/completions"


@pytest.fixture
def shared_stores():
    pg_uri = create_database()
    prefix = f"semcache_proxy_{uuid.uuid4().hex[:10]}"
    yield pg_uri, prefix
    delete_prefix(SHARED_REDIS_URI, prefix)
    drop_database(pg_uri)


def _start_proxy(upstream, pg_uri, prefix):
    env = {
        **os.environ,
        "SEMANTIC_CACHE_PG_URI": pg_uri,
        "SEMANTIC_CACHE_REDIS_URI": SHARED_REDIS_URI,
        "SEMANTIC_CACHE_PREFIX": prefix,
        "SEMANTIC_CACHE_EMBEDDER_TYPE": "testing-hash",
        "SEMANTIC_CACHE_THRESHOLD": "0.8",
        "SEMANTIC_CACHE_VERIFIER": "none",
        "SEMANTIC_CACHE_ADMIN_TOKEN": "t",
    }
    return start_proxy(upstream, env=env, ready_within=60)


def test_entry_stored_by_one_proxy_is_a_hit_in_another(upstream, fake, shared_stores):
    pg_uri, prefix = shared_stores
    a, url_a = _start_proxy(upstream, pg_uri, prefix)
    try:
        b, url_b = _start_proxy(upstream, pg_uri, prefix)
        try:
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": "how do I rotate my api keys safely"}],
            }
            first = httpx.post(url_a + CHAT, json=body)
            assert first.headers["x-semcache"] == "miss"
            # the store completes just after the response is sent: wait for the vector
            admin = {"Authorization": "Bearer t"}
            wait_until(
                lambda: (
                    httpx.get(url_a + "/_semcache/admin/stats", headers=admin).json()["vectors"]
                    == 1
                ),
                timeout=10,
                what="the first proxy stored the vector",
            )
            second = httpx.post(url_b + CHAT, json=body)
            assert second.headers["x-semcache"] == "hit"
            assert second.json() == first.json()
            para = {
                "model": "m",
                "messages": [
                    {"role": "user", "content": "how do I rotate my api keys safely please"}
                ],
            }
            assert httpx.post(url_b + CHAT, json=para).headers["x-semcache"] == "hit"
            assert fake.calls == 1
        finally:
            stop_proxy(b)
    finally:
        stop_proxy(a)
