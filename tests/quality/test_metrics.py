"""Metrics and input handling of the evaluation, on tiny files with known answers."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from semcache import Settings
from semcache.evaluation import (
    EvaluationError,
    Metrics,
    evaluate,
    load_pairs,
    metrics,
    parse_pair,
    split_conversation,
    sweep_thresholds,
)
from semcache.testing import HashingTestEmbedder

from .conftest import TINY


def test_metrics_arithmetic() -> None:
    m = metrics([True, True, True, False, False], [True, False, True, True, False])
    assert (m.pairs, m.positives, m.negatives) == (5, 3, 2)
    assert (m.true_hits, m.false_hits, m.hits) == (2, 1, 3)
    assert m.hit_rate == pytest.approx(3 / 5)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.false_hit_rate == pytest.approx(1 / 2)


def test_undefined_rates_are_nan_and_null_in_json() -> None:
    m = Metrics(pairs=2, positives=0, true_hits=0, false_hits=0)
    assert math.isnan(m.precision) and math.isnan(m.recall)
    assert m.false_hit_rate == 0.0
    assert m.as_dict()["precision"] is None


async def test_tiny_file_known_answers() -> None:
    # Hashing test embedder, no verifier: repeats (after normalisation) hit, unrelated
    # texts miss, and a different system prompt is another partition.
    pairs = load_pairs(TINY)
    settings = Settings.from_env({}, verifier="none", threshold=0.9)
    report = await evaluate(pairs, settings, embedder=HashingTestEmbedder(), sweep=[0.5, 0.9])
    o = report.overall
    assert (o.pairs, o.positives, o.true_hits, o.false_hits) == (7, 4, 3, 1)
    assert o.precision == pytest.approx(0.75)
    assert o.recall == pytest.approx(0.75)
    assert o.false_hit_rate == pytest.approx(1 / 3)
    assert o.hit_rate == pytest.approx(4 / 7)
    cats = report.by_category
    assert set(cats) == {"plain", "unrelated", "chat"}
    assert (cats["plain"].true_hits, cats["plain"].false_hits) == (2, 1)
    assert cats["unrelated"].hits == 0
    assert (cats["chat"].true_hits, cats["chat"].false_hits) == (1, 0)
    assert [p.threshold for p in report.sweep] == [0.5, 0.9]
    assert report.sweep[1].verified == report.overall
    assert report.threshold == 0.9 and report.verifier == "none"


async def test_verifier_changes_the_outcome(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(
        json.dumps(
            {
                "a": "please cancel my order",
                "b": "please do not cancel my order",
                "same_answer": False,
            }
        )
        + "\n"
    )
    pairs = load_pairs(f)
    raw = await evaluate(
        pairs, Settings.from_env({}, verifier="none", threshold=0.5), embedder=HashingTestEmbedder()
    )
    checked = await evaluate(
        pairs,
        Settings.from_env({}, verifier="default", threshold=0.5),
        embedder=HashingTestEmbedder(),
    )
    assert raw.overall.false_hits == 1
    assert checked.overall.false_hits == 0


def _oslo(system: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "I live in Oslo."},
        {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
        {"role": "user", "content": "What should I wear?"},
    ]


def test_split_conversation() -> None:
    side = split_conversation(_oslo("Be brief."))
    assert side.query == "What should I wear?"
    assert side.context == "user: I live in Oslo.\nassistant: Noted."
    # The system prompt is no part of the question or context: it is in the partition.
    assert split_conversation(_oslo("Be brief.")) == side
    other = split_conversation(_oslo("Be verbose."))
    assert (other.query, other.context) == (side.query, side.context)
    assert other.partition != side.partition
    assert other.partition_without_context != side.partition_without_context
    first = split_conversation([{"role": "user", "content": "Hi"}])
    assert (first.query, first.context) == ("Hi", None)
    with pytest.raises(EvaluationError):
        split_conversation([{"role": "assistant", "content": "Hello"}])


def test_parse_pair_errors() -> None:
    with pytest.raises(EvaluationError, match="missing"):
        parse_pair({"a": "x", "b": "y"})
    with pytest.raises(EvaluationError, match="true or false"):
        parse_pair({"a": "x", "b": "y", "same_answer": "yes"})
    with pytest.raises(EvaluationError, match="string or a list"):
        parse_pair({"a": 3, "b": "y", "same_answer": True})


def test_load_pairs_limit_and_sample(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(
        "\n".join(
            json.dumps({"id": str(i), "a": f"q{i}", "b": f"q{i}", "same_answer": True})
            for i in range(50)
        )
        + "\n\n"
    )
    assert len(load_pairs(f)) == 50
    assert [p.id for p in load_pairs(f, limit=3)] == ["0", "1", "2"]
    sample = [p.id for p in load_pairs(f, limit=5, sample=True, seed=1)]
    assert len(set(sample)) == 5 and sample == [
        p.id for p in load_pairs(f, limit=5, sample=True, seed=1)
    ]
    assert sample != ["0", "1", "2", "3", "4"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x", "b": "y", "same_answer": true}\nnot json\n')
    with pytest.raises(EvaluationError, match=":2: not JSON"):
        load_pairs(bad)
    with pytest.raises(EvaluationError, match="cannot read"):
        load_pairs(tmp_path / "missing.jsonl")


def test_sweep_spec() -> None:
    assert sweep_thresholds("0.8:0.9:0.05") == [0.8, 0.85, 0.9]
    assert sweep_thresholds("0.9,0.8") == [0.8, 0.9]
    for bad in ("0.9:0.8:0.1", "a,b", "0.5:1.5:0.5", ""):
        with pytest.raises(EvaluationError):
            sweep_thresholds(bad)
