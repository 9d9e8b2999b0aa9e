"""`semcache eval` with a judge: its hits below the threshold count as hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semcache import Settings
from semcache.errors import EvaluationError
from semcache.evaluation import evaluate, load_pairs
from semcache.testing import HashingTestEmbedder
from tests.judge._fake_judges import FakeJudge

PAIRS = [
    ("How do I reset my password?", "How can I change my password?", True),
    ("How do I reset my password?", "How do I reset my router?", False),
    ("Is 17 a prime number?", "Is 21 a prime number?", False),
]


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"a": a, "b": b, "same_answer": same}) for a, b, same in PAIRS]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_the_judge_wins_the_paraphrase_and_the_traps_stay_out(
    openai_fake: FakeJudge, pairs: Path
) -> None:
    plain = Settings.from_env({}, threshold=0.9)
    judged = plain.replace(judge="llm", judge_url=openai_fake.url, judge_model="tiny-judge")
    without = await evaluate(load_pairs(pairs), plain, embedder=HashingTestEmbedder())
    report = await evaluate(load_pairs(pairs), judged, embedder=HashingTestEmbedder())
    assert (without.overall.true_hits, without.overall.false_hits) == (0, 0)
    assert (report.overall.true_hits, report.overall.false_hits) == (1, 0)
    assert len(openai_fake.state.requests) == 2  # the number trap never reached it


async def test_a_sweep_with_a_judge_is_refused(openai_fake: FakeJudge, pairs: Path) -> None:
    judged = Settings.from_env(
        {}, threshold=0.9, judge="llm", judge_url=openai_fake.url, judge_model="tiny-judge"
    )
    with pytest.raises(EvaluationError, match="sweep"):
        await evaluate(load_pairs(pairs), judged, embedder=HashingTestEmbedder(), sweep=[0.8])
