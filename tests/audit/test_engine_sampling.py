"""The engine samples semantic hits for audits only for adapters that can ask the
upstream again, and never exact hits."""

from __future__ import annotations

from semcache import SemanticCache, Settings
from semcache.http import CachePlan, HttpCacheEngine, Replay, StoredResponse
from semcache.testing import HashingTestEmbedder

PLAN = CachePlan("What is the capital of France?", "p", ttl=60, metadata={"path": "/x"})
PARAPHRASE = CachePlan("tell me what is the capital of France", "p", metadata={"path": "/x"})
OTHER_PARAPHRASE = CachePlan(
    "please tell me what is the capital of France", "p", metadata={"path": "/x"}
)
STORED = StoredResponse(200, (("content-type", "application/json"),), b'{"a": 1}')


def make_cache() -> SemanticCache:
    settings = Settings.from_env({}, threshold=0.8, audit_rate=1.0)
    return SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None)


async def test_only_semantic_hits_of_adapters_that_shadow_are_sampled() -> None:
    async with make_cache() as cache:
        engine = HttpCacheEngine(cache)
        assert await engine.store(PLAN, STORED)
        replay = await engine.begin(PARAPHRASE)
        assert isinstance(replay, Replay) and replay.audit is None  # cannot shadow
        engine.shadows = True
        replay = await engine.begin(OTHER_PARAPHRASE)  # another text: never an alias yet
        assert isinstance(replay, Replay) and replay.audit is not None
        assert (
            replay.audit.hit.rule == "unverified"
            and replay.audit.question == OTHER_PARAPHRASE.query
        )
        exact = await engine.begin(PLAN)
        assert isinstance(exact, Replay) and exact.audit is None
        assert engine.auditor.ledger.events()["sampled"] == 1
        # Every semantic hit is remembered for feedback, sampled or not.
        assert engine.auditor.ledger.last_served(replay.audit.hit.entry_id) is not None
