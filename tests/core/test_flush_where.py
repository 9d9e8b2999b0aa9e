"""Flush by what an operator knows: the partition tags the HTTP policy records, and
SemanticCache.flush_where over them."""

from __future__ import annotations

import json

import pytest

from semcache import SemanticCache, Settings, UnsupportedOperationError
from semcache.http import CachePlan, HttpCachePolicy, HttpRequest, raw_request_path
from semcache.stores.memory_responses import MemoryResponseStore
from semcache.stores.memory_vectors import MemoryVectorStore
from semcache.tags import credential_tag, entry_tags, query_tags, tenant_tag
from semcache.testing import HashingTestEmbedder

CHAT = "/v1/chat/completions"


def _request(path: str = CHAT, model: str = "gpt-4o-mini", **headers: str) -> HttpRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "How tall is Everest?"}]}
    pairs = (
        ("content-type", "application/json"),
        *((k.replace("_", "-"), v) for k, v in headers.items()),
    )
    return HttpRequest("POST", path, "", pairs, json.dumps(body).encode())


async def test_the_plan_records_path_model_and_hashed_identity() -> None:
    policy = HttpCachePolicy(Settings.from_env({}, tenant_header="x-tenant"))
    plan = await policy.plan(_request(authorization="Bearer sk-secret", x_tenant="acme"))
    assert isinstance(plan, CachePlan)
    meta = plan.metadata
    assert meta["path"] == CHAT and meta["model"] == "gpt-4o-mini"
    assert meta["credential"] == [credential_tag("sk-secret")]
    assert meta["tenant"] == [tenant_tag("acme")]
    assert "sk-secret" not in json.dumps(meta) and "acme" not in json.dumps(meta)


async def test_no_credential_tag_when_credentials_do_not_split_the_partition() -> None:
    policy = HttpCachePolicy(Settings.from_env({}, auth_mode="shared"))
    plan = await policy.plan(_request(authorization="Bearer sk-secret"))
    assert isinstance(plan, CachePlan) and "credential" not in plan.metadata


def test_credential_tags_ignore_the_bearer_scheme() -> None:
    assert credential_tag("Bearer sk-1") == credential_tag("sk-1") == credential_tag(" bearer sk-1")
    assert credential_tag("sk-1") != credential_tag("sk-2") != tenant_tag("sk-2")
    assert entry_tags({"model": "m", "tenant": ["a", "b"], "status": 200}) == [
        ("model", "m"),
        ("tenant", "a"),
        ("tenant", "b"),
    ]


@pytest.mark.parametrize("criteria", [{}, {"modle": "m"}, {"model": ""}, {"path": 3}])
def test_bad_criteria_raise(criteria: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        query_tags(criteria)  # type: ignore[arg-type]


def test_raw_request_path() -> None:
    assert raw_request_path(b"/v1/chat%2Fcompletions", "/v1/chat/completions") == (
        "/v1/chat%2Fcompletions"
    )
    assert raw_request_path("/a%20b?x=1", "/a b") == "/a%20b"
    assert raw_request_path("http://host:80/a%2Fb?q", "/a/b") == "/a%2Fb"
    assert raw_request_path(None, "/a b") == raw_request_path("", "/a b") == "/a b"
    assert raw_request_path("*", "/") == "/"


def _cache(**kwargs: object) -> SemanticCache:
    embedder = HashingTestEmbedder()
    return SemanticCache(
        embedder=embedder,
        vector_store=MemoryVectorStore(embedder.dimension),
        response_store=kwargs.pop("response_store", MemoryResponseStore()),  # type: ignore[arg-type]
        verifier=None,
    )


async def test_flush_where_removes_answers_and_vectors_of_matching_partitions_only() -> None:
    async with _cache() as cache:
        alice = {"model": "m1", "path": CHAT, "credential": [credential_tag("sk-alice")]}
        bob = {"model": "m1", "path": CHAT, "credential": [credential_tag("sk-bob")]}
        await cache.store("how tall is everest", b"8849 m", partition="a", metadata=alice)
        await cache.store("how deep is the sea", b"11 km", partition="a", metadata=alice)
        await cache.store("how tall is everest", b"8849 m", partition="b", metadata=bob)
        assert await cache.flush_where(credential="Bearer sk-alice") == 2
        assert await cache.lookup("how tall is everest", partition="a") is None
        assert await cache.lookup("how tall is everest", partition="b") is not None
        assert await cache.vector_store.count() == 1  # type: ignore[union-attr]
        assert await cache.flush_where(model="m2") == 0
        assert await cache.flush_where(model="m1", path=CHAT) == 1
        with pytest.raises(ValueError):
            await cache.flush_where()


class _NoIndex:
    def __init__(self) -> None:
        self._inner = MemoryResponseStore()

    def __getattr__(self, name: str) -> object:
        if name == "partitions_where":
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_flush_where_needs_a_partition_index() -> None:
    async with _cache(response_store=_NoIndex()) as cache:
        with pytest.raises(UnsupportedOperationError):
            await cache.flush_where(model="m1")
