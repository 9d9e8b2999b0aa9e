"""`SemanticCache(verifier=...)`: a name selects that verifier, "none" verifies nothing."""

from __future__ import annotations

from typing import Any

import pytest

from semcache import SemanticCache, Settings, plugins
from semcache.errors import PluginNotFoundError
from semcache.testing import HashingTestEmbedder
from semcache.verify import DefaultVerifier

# A trap: almost the same words, the opposite request.
STORED = "please cancel my subscription today"
TRAP = "please do not cancel my subscription today"


def make(**options: Any) -> SemanticCache:
    settings = Settings.from_env({}, threshold=0.6, batch_max_size=1)
    return SemanticCache(settings, embedder=HashingTestEmbedder(), **options)


async def answer_to_trap(cache: SemanticCache) -> bytes | None:
    async with cache:
        await cache.store(STORED, b"cancelled", partition="p")
        hit = await cache.lookup(TRAP, partition="p")
        return None if hit is None else hit.payload


async def test_the_trap_is_similar_enough_to_reach_the_verifier():
    async with make(verifier=None) as cache:
        await cache.store(STORED, b"cancelled", partition="p")
        hit = await cache.lookup(TRAP, partition="p")
    assert hit is not None and hit.similarity >= 0.6


async def test_verifier_none_verifies_nothing():
    cache = make(verifier="none")
    assert cache.verifier is None
    assert await answer_to_trap(cache) == b"cancelled"


async def test_default_comes_from_the_setting_and_refuses_the_trap():
    cache = make()
    assert isinstance(cache.verifier, DefaultVerifier)
    assert await answer_to_trap(cache) is None


async def test_a_name_wins_over_the_setting():
    settings = Settings.from_env({}, threshold=0.6, batch_max_size=1, verifier="none")
    named = SemanticCache(settings, embedder=HashingTestEmbedder(), verifier="default")
    assert isinstance(named.verifier, DefaultVerifier)
    assert await answer_to_trap(named) is None


class _RefuseAll:
    async def verify(self, query: Any, candidate: Any, similarity: float) -> bool:
        return False


class _Plugin:
    @plugins.hookimpl
    def semcache_create_verifier(self, name: str, settings: Settings) -> Any:
        return _RefuseAll() if name == "refuse-all" else None


def test_any_other_name_selects_that_verifier_plugin():
    plugins.register("verifier", "refuse-all", _Plugin())
    assert isinstance(make(verifier="refuse-all").verifier, _RefuseAll)
    with pytest.raises(PluginNotFoundError, match="no-such-verifier"):
        make(verifier="no-such-verifier")
