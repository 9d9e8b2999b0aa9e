"""Through the proxy over a real server: who may see an answer, and what is cached at all."""

from __future__ import annotations

import httpx

from tests.support.polling import wait_until
from tests.support.servers import serve_asgi

from .conftest import make_proxy

CHAT = "/v1/chat/completions"


def chat(question):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


def stored_and_hit(client, body, headers):
    first = client.post(CHAT, json=body, headers=headers)
    assert first.headers["x-semcache"] == "miss"
    wait_until(
        lambda: client.post(CHAT, json=body, headers=headers).headers["x-semcache"] == "hit",
        timeout=10,
        what="the answer stored",
    )
    return first


def test_a_cookie_session_never_gets_another_sessions_answer(upstream):
    app = make_proxy(upstream)
    body = chat("What is my account balance?")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        alice = stored_and_hit(client, body, {"cookie": "session=alice"})
        bob = client.post(CHAT, json=body, headers={"cookie": "session=bob"})
        anonymous = client.post(CHAT, json=body)
        gemini = client.post(CHAT, json=body, headers={"x-goog-api-key": "key-c"})
    assert bob.headers["x-semcache"] == anonymous.headers["x-semcache"] == "miss"
    assert gemini.headers["x-semcache"] == "miss"
    assert alice.json()["choices"][0]["message"]["content"] not in (
        bob.text,
        anonymous.text,
    )


def test_answer_changing_headers_split_answers(upstream):
    app = make_proxy(upstream)
    body = chat("Describe the weather in two words")
    key = {"authorization": "Bearer k"}
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        stored_and_hit(client, body, {**key, "openai-organization": "org-a"})
        other = client.post(CHAT, json=body, headers={**key, "openai-organization": "org-b"})
        german = client.post(CHAT, json=body, headers={**key, "accept-language": "de"})
    assert other.headers["x-semcache"] == german.headers["x-semcache"] == "miss"


def test_only_generation_endpoints_are_cached_by_default(upstream, fake):
    app = make_proxy(upstream)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        for path in ("/echo/v1/embeddings", "/echo/v1/moderations", "/echo/v1/threads"):
            for _ in range(2):
                answer = client.post(path, json={"model": "m", "input": "a text"})
                assert answer.status_code == 200
                assert "x-semcache" not in answer.headers  # untouched
        assert fake.calls == 6
        everything = make_proxy(upstream, paths=["*"])
    with serve_asgi(everything) as url, httpx.Client(base_url=url) as client:
        answer = client.post("/echo/v1/embeddings", json={"model": "m", "input": "a text"})
        assert answer.headers["x-semcache"] == "miss"


def test_two_upstreams_sharing_one_store_never_share_answers(upstream, fake):
    from semcache import SemanticCache
    from semcache.testing import HashingTestEmbedder
    from semcache_proxy import create_semantic_cache_proxy_app

    cache = SemanticCache(embedder=HashingTestEmbedder(), threshold=0.8, verifier=None)
    body = chat("Summarise the plot of Hamlet")
    with serve_asgi(fake.app) as second_upstream:
        one = create_semantic_cache_proxy_app(upstream, cache)
        two = create_semantic_cache_proxy_app(second_upstream + "/", cache)
        with serve_asgi(one) as url_one, serve_asgi(two) as url_two:
            with httpx.Client(base_url=url_one) as client:
                stored_and_hit(client, body, {})
            with httpx.Client(base_url=url_two) as client:
                assert client.post(CHAT, json=body).headers["x-semcache"] == "miss"


def test_embeddings_can_be_cached_for_exact_repeats_only(upstream, fake):
    app = make_proxy(upstream, exact_paths=["*/embeddings"])
    path = "/echo/v1/embeddings"
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        first = client.post(path, json={"model": "m", "input": "the quick brown fox"})
        assert first.headers["x-semcache"] == "miss"
        wait_until(
            lambda: (
                client.post(path, json={"model": "m", "input": "the quick brown fox"}).headers[
                    "x-semcache"
                ]
                == "hit"
            ),
            timeout=10,
            what="the vectors stored",
        )
        # A near-identical text gets its own vectors, never the stored ones.
        near = client.post(path, json={"model": "m", "input": "the quick brown fox!"})
        assert near.headers["x-semcache"] == "miss"


def test_stored_responses_are_never_shared_across_credentials_even_in_shared_mode(upstream):
    app = make_proxy(upstream, auth_mode="shared")
    path = "/echo/v1/responses"  # the echo route answers like an upstream would
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:

        def ask(body, key):
            return client.post(path, json=body, headers={"authorization": f"Bearer {key}"})

        for stored in ({}, {"store": True}):
            body = {"model": "m", "input": "What did I ask you yesterday?", **stored}
            assert ask(body, "alice").headers["x-semcache"] == "miss"
            wait_until(
                lambda b=body: ask(b, "alice").headers["x-semcache"] == "hit",
                timeout=10,
                what="alice's answer stored",
            )
            assert ask(body, "bob").headers["x-semcache"] == "miss", stored
        public = {"model": "m", "input": "What is the capital of Peru?", "store": False}
        assert ask(public, "alice").headers["x-semcache"] == "miss"
        wait_until(
            lambda: ask(public, "bob").headers["x-semcache"] == "hit",
            timeout=10,
            what="a stateless answer shared, as auth_mode=shared asks",
        )
