"""Client controls over a real server, each off until the operator turns it on: a namespace
header that narrows the partition, and X-Semcache-Mode read-only / write-only. The same
rules hold in the proxy and in the ASGI middleware."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.polling import wait_stores
from tests.support.servers import serve_asgi

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "How do I rotate my API key?"}]}
ALICE = {"authorization": "Bearer alice"}
BOB = {"authorization": "Bearer bob"}

Serve = Callable[..., AbstractContextManager[tuple[str, SemanticCache]]]


def build_cache(**settings: Any) -> SemanticCache:
    base = Settings.from_env({}).replace(**settings)
    return SemanticCache(base, embedder=HashingTestEmbedder(), threshold=0.8, verifier=None)


@contextmanager
def through_proxy(upstream: str, **settings: Any) -> Iterator[tuple[str, SemanticCache]]:
    cache = build_cache(**settings)
    with serve_asgi(create_semantic_cache_proxy_app(upstream, cache)) as url:
        yield url, cache


@contextmanager
def through_middleware(upstream: str, **settings: Any) -> Iterator[tuple[str, SemanticCache]]:
    # The middleware around an app of its own: the fake upstream's ASGI app, in process.
    del upstream
    cache = build_cache(**settings)
    with serve_asgi(SemanticCacheMiddleware(FakeLLM().app, cache=cache)) as url:
        yield url, cache


@pytest.fixture(params=["proxy", "middleware"])
def serve(request: pytest.FixtureRequest, upstream: str) -> Serve:
    chosen = through_proxy if request.param == "proxy" else through_middleware
    return lambda **settings: chosen(upstream, **settings)


def ask(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + CHAT, json=BODY, headers=headers, timeout=10)


def answer(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


# -- the namespace header ---------------------------------------------------------------


def test_a_namespace_narrows_the_partition_and_never_reaches_another_credential(
    serve: Serve,
) -> None:
    ns = "x-semcache-namespace"
    with serve(namespace_header="X-Semcache-Namespace") as (url, cache):
        assert ask(url, {**ALICE, ns: "project-a"}).headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        assert ask(url, {**ALICE, ns: "project-a"}).headers["x-semcache"] == "hit"
        # Another namespace, or none: another partition.
        assert ask(url, {**ALICE, ns: "project-b"}).headers["x-semcache"] == "miss"
        assert ask(url, ALICE).headers["x-semcache"] == "miss"
        # Another tenant naming Alice's namespace still has its own credential in the key.
        assert ask(url, {**BOB, ns: "project-a"}).headers["x-semcache"] == "miss"
        assert ask(url, {ns: "project-a"}).headers["x-semcache"] == "miss"


def test_without_the_setting_the_namespace_header_is_ignored(serve: Serve) -> None:
    ns = "x-semcache-namespace"
    with serve() as (url, cache):
        assert ask(url, {**ALICE, ns: "project-a"}).headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        assert ask(url, {**ALICE, ns: "project-b"}).headers["x-semcache"] == "hit"


# -- X-Semcache-Mode --------------------------------------------------------------------


def test_read_only_serves_hits_and_never_stores(serve: Serve) -> None:
    read_only = {**ALICE, "x-semcache-mode": "read-only"}
    with serve(client_modes=True) as (url, cache):
        assert ask(url, read_only).headers["x-semcache"] == "miss"  # asked the upstream
        stored = ask(url, ALICE)
        assert stored.headers["x-semcache"] == "miss"  # the read-only answer was not kept
        wait_stores(cache, 1)
        hit = ask(url, read_only)
        assert hit.headers["x-semcache"] == "hit"
        assert answer(hit) == answer(stored)
        assert cache.counters["stores"] == 1


def test_write_only_always_asks_the_upstream_and_stores_its_answer(serve: Serve) -> None:
    write_only = {**ALICE, "x-semcache-mode": "write-only"}
    with serve(client_modes=True) as (url, cache):
        first = ask(url, ALICE)
        wait_stores(cache, 1)
        warmed = ask(url, write_only)
        assert warmed.headers["x-semcache"] == "miss"  # not read, though stored
        assert answer(warmed) != answer(first)
        wait_stores(cache, 2)
        hit = ask(url, ALICE)
        assert hit.headers["x-semcache"] == "hit"
        assert answer(hit) == answer(warmed)  # the write replaced the entry
        # Like no-cache, a write changes what the partition gets: not for anonymous
        # clients (client_cache_control "identified"), for whom it is ignored.
        anonymous = ask(url, {})
        wait_stores(cache, 3)
        again = ask(url, {"x-semcache-mode": "write-only"})
        assert again.headers["x-semcache"] == "hit"
        assert answer(again) == answer(anonymous)


def test_without_the_setting_the_mode_header_is_ignored(serve: Serve) -> None:
    with serve() as (url, cache):
        first = ask(url, {**ALICE, "x-semcache-mode": "read-only"})
        assert first.headers["x-semcache"] == "miss"
        wait_stores(cache, 1)  # stored all the same
        hit = ask(url, {**ALICE, "x-semcache-mode": "write-only"})
        assert hit.headers["x-semcache"] == "hit"  # read all the same
        assert answer(hit) == answer(first)


def test_no_store_still_wins_over_a_mode(serve: Serve) -> None:
    headers = {**ALICE, "x-semcache-mode": "write-only", "cache-control": "no-store"}
    with serve(client_modes=True) as (url, cache):
        assert ask(url, headers).headers["x-semcache"] == "bypass"
        assert ask(url, ALICE).headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        assert cache.counters["stores"] == 1
