"""Two proxy processes sharing one PostgreSQL + Redis cache."""

import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.store_pgvector.servers import create_database, drop_database
from tests.store_redis.servers import SHARED_REDIS_URI, delete_prefix

from ..support.servers import free_port

CHAT = "/v1/chat/completions"


@pytest.fixture
def shared_stores():
    pg_uri = create_database()
    prefix = f"semcache_proxy_{uuid.uuid4().hex[:10]}"
    yield pg_uri, prefix
    delete_prefix(SHARED_REDIS_URI, prefix)
    drop_database(pg_uri)


def _start_proxy(upstream, pg_uri, prefix):
    port = free_port()
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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semcache_proxy.cli",
            "--upstream",
            upstream,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "proxy exited"
        assert time.monotonic() < deadline, "proxy did not become ready"
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


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
            deadline = time.monotonic() + 10
            while (
                httpx.get(
                    url_a + "/_semcache/admin/stats", headers={"Authorization": "Bearer t"}
                ).json()["vectors"]
                != 1
            ):
                assert time.monotonic() < deadline
                time.sleep(0.02)
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
            b.terminate()
            b.wait(10)
    finally:
        a.terminate()
        a.wait(10)
