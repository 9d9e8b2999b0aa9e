"""A cache with the test embedder and an LLM judge served by a fake chat server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from tests.judge._fake_judges import FakeJudge, ollama_judge, openai_judge

THRESHOLD = 0.9
"""The cache's threshold in these tests; the judge's floor stays at its default, 0.55."""


@pytest.fixture
def openai_fake() -> Iterator[FakeJudge]:
    with openai_judge() as judge:
        yield judge


@pytest.fixture
def ollama_fake() -> Iterator[FakeJudge]:
    with ollama_judge() as judge:
        yield judge


def make_cache(judge: FakeJudge | None, api: str = "openai", **overrides: Any) -> SemanticCache:
    """The cache under test; ``judge=None``: the same cache without a judge."""
    options: dict[str, Any] = {"threshold": THRESHOLD, "batch_max_size": 1}
    if judge is not None:
        options |= {
            "judge": "llm",
            "judge_api": api,
            "judge_url": judge.url,
            "judge_model": "tiny-judge",
            "judge_api_key": "sk-judge-secret-7",
            "judge_price": 2.0,
        }
    settings = Settings.from_env({}, **(options | overrides))
    return SemanticCache(settings, embedder=HashingTestEmbedder())
