"""The upstream 429 breaker, end to end: one breaker per credential, fed by misses only.

A key out of credit (or one tenant at its own rate limit) gets 503s with ``Retry-After``
after five 429s in a row; every other key's misses still reach the upstream, hits are
still served, and requests that bypass the cache never open anyone's breaker.
"""

import time

import httpx

from tests.support.polling import wait_until
from tests.support.servers import serve_asgi

from .conftest import make_proxy

CHAT = "/v1/chat/completions"
A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
THRESHOLD = 5  # the default upstream_429_threshold


def chat(question):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


def test_one_credentials_429s_open_only_its_own_breaker(upstream, fake):
    app = make_proxy(upstream, upstream_429_cooldown=30.0)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        stored_a = client.post(CHAT, json=chat("What is the boiling point of water?"), headers=A)
        stored_b = client.post(CHAT, json=chat("How tall is Mount Everest?"), headers=B)
        assert stored_a.status_code == stored_b.status_code == 200
        wait_until(
            lambda: (
                client.post(CHAT, json=chat("How tall is Mount Everest?"), headers=B).headers[
                    "x-semcache"
                ]
                == "hit"
            ),
            timeout=10,
            what="B's answer stored",
        )
        fake.rate_limited = {A["Authorization"]: None}
        assert "semcache_upstream_breakers_open 0.0" in client.get("/metrics").text
        for i in range(THRESHOLD):
            limited = client.post(CHAT, json=chat(f"Question number {i} from A"), headers=A)
            assert (limited.status_code, limited.headers["x-semcache"]) == (429, "miss")
        calls = fake.calls
        assert "semcache_upstream_breakers_open 1.0" in client.get("/metrics").text
        rejected = client.post(CHAT, json=chat("One more question from A"), headers=A)
        assert (rejected.status_code, rejected.headers["x-semcache"]) == (503, "miss")
        assert 29 <= int(rejected.headers["retry-after"]) <= 30
        assert rejected.json()["error"]["type"] == "upstream_rate_limited"
        assert fake.calls == calls  # A's miss never reached the upstream
        # A's own hits are still served.
        hit_a = client.post(CHAT, json=chat("what is the boiling point of water"), headers=A)
        assert (hit_a.status_code, hit_a.headers["x-semcache"]) == (200, "hit")
        # B's misses still reach the upstream, B's hits still hit; so do anonymous misses.
        miss_b = client.post(CHAT, json=chat("Why is the sky blue?"), headers=B)
        assert (miss_b.status_code, miss_b.headers["x-semcache"]) == (200, "miss")
        assert fake.calls == calls + 1
        hit_b = client.post(CHAT, json=chat("how tall is mount everest"), headers=B)
        assert (hit_b.status_code, hit_b.headers["x-semcache"]) == (200, "hit")
        anonymous = client.post(CHAT, json=chat("Why do cats purr?"))
        assert (anonymous.status_code, anonymous.headers["x-semcache"]) == (200, "miss")
        assert fake.calls == calls + 2


def test_bypassed_429s_never_open_a_breaker(upstream, fake):
    app = make_proxy(upstream)
    fake.rate_limited = {A["Authorization"]: "60"}
    no_store = {**A, "Cache-Control": "no-store"}
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        for i in range(3 * THRESHOLD):
            bypassed = client.post(CHAT, json=chat(f"Bypassed question {i}"), headers=no_store)
            assert (bypassed.status_code, bypassed.headers["x-semcache"]) == (429, "bypass")
            not_json = client.post(CHAT, content=b"not json", headers=A)
            assert (not_json.status_code, not_json.headers["x-semcache"]) == (429, "bypass")
        calls = fake.calls
        miss = client.post(CHAT, json=chat("A question that is cached"), headers=A)
        assert (miss.status_code, miss.headers["x-semcache"]) == (429, "miss")
        assert fake.calls == calls + 1  # it reached the upstream: no breaker was open
        fake.rate_limited = {}
        other = client.post(CHAT, json=chat("A question from someone else"), headers=B)
        assert (other.status_code, other.headers["x-semcache"]) == (200, "miss")


def test_retry_after_sets_how_long_a_credentials_breaker_stays_open(upstream, fake):
    app = make_proxy(upstream, upstream_429_cooldown=300.0)
    fake.rate_limited = {A["Authorization"]: "2"}
    body = chat("Summarise the news of the day")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        for _ in range(THRESHOLD):
            assert client.post(CHAT, json=body, headers=A).status_code == 429
        opened = time.monotonic()
        rejected = client.post(CHAT, json=body, headers=A)
        assert rejected.status_code == 503
        assert rejected.headers["retry-after"] == "2"  # what the upstream asked, not 300
        fake.rate_limited = {}
        calls = fake.calls
        wait_until(
            lambda: client.post(CHAT, json=body, headers=A).status_code == 200,
            timeout=10,
            what="A's breaker closed after its Retry-After",
            interval=0.05,
        )
        waited = time.monotonic() - opened
    assert fake.calls == calls + 1  # only the request after the open period reached it
    assert 1.5 <= waited < 8, waited
