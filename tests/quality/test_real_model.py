"""The default settings with the real default model (all-MiniLM-L6-v2), on the trap set.

The model loads once per session and each text is embedded once (the evaluation
remembers vectors), so this stays within seconds of model time.
"""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from semcache import Settings
from semcache.evaluation import Report, evaluate, load_pairs
from semcache.thresholds import default_threshold

from .conftest import TRAPS

QQP = Path("/work/shared/eval/qqp_dev.jsonl")
TRAP_CATEGORIES = ("negation", "number", "date", "unit", "entity", "scope", "direction", "context")


@pytest.fixture(scope="session")
def reports(real_embedder: Any) -> dict[str, Report]:
    pairs = load_pairs(TRAPS)
    chats = [p for p in pairs if p.a.context is not None or p.b.context is not None]

    async def run() -> dict[str, Report]:
        defaults = Settings.from_env({})
        return {
            "default": await evaluate(pairs, defaults, embedder=real_embedder, sweep=[0.5, 0.85]),
            "semantic": await evaluate(
                chats, defaults.replace(context_mode="semantic"), embedder=real_embedder
            ),
        }

    return asyncio.run(run())


def test_defaults_serve_almost_no_traps(reports: dict[str, Report]) -> None:
    report = reports["default"]
    assert report.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert report.threshold == default_threshold(report.model_id)
    traps = [report.by_category[c] for c in TRAP_CATEGORIES]
    served = sum(m.false_hits for m in traps)
    total = sum(m.negatives for m in traps)
    print(f"traps served at defaults: {served}/{total}")
    assert total >= 150
    assert served / total <= 0.03
    for c in TRAP_CATEGORIES:
        assert report.by_category[c].false_hit_rate <= 0.1, c


def test_defaults_serve_most_paraphrases(reports: dict[str, Report]) -> None:
    cats = reports["default"].by_category
    for name, floor in (("paraphrase", 0.7), ("near-repeat", 0.9)):
        print(
            f"{name}: recall {cats[name].recall:.3f} ({cats[name].true_hits}/{cats[name].positives})"
        )
        assert cats[name].recall >= floor


def test_verifier_does_the_work_not_the_threshold(reports: dict[str, Report]) -> None:
    # At a permissive threshold, similarity alone serves many traps; the verifier does not.
    loose = reports["default"].sweep[0]
    assert loose.threshold == 0.5
    assert loose.raw.false_hit_rate > 0.5
    assert loose.verified.false_hit_rate <= 0.03
    assert loose.verified.recall >= 0.8 * loose.raw.recall


def test_semantic_context_mode(reports: dict[str, Report]) -> None:
    exact = reports["default"].by_category
    semantic = reports["semantic"].by_category
    print(
        "context-paraphrase recall: exact "
        f"{exact['context-paraphrase'].recall:.2f}, semantic {semantic['context-paraphrase'].recall:.2f}; "
        f"context traps served: exact {exact['context'].false_hits}, semantic {semantic['context'].false_hits}"
    )
    assert exact["context"].false_hits == 0
    assert semantic["context"].false_hit_rate <= 0.05
    assert semantic["context-paraphrase"].recall > exact["context-paraphrase"].recall
    assert semantic["context-paraphrase"].recall >= 0.7


@pytest.mark.skipif(not QQP.exists(), reason="qqp_dev.jsonl is not on this machine")
def test_qqp_sample_verifier_raises_precision(real_embedder: Any) -> None:
    pairs = load_pairs(QQP, limit=300, sample=True, seed=7)

    async def run() -> Report:
        return await evaluate(pairs, Settings.from_env({}), embedder=real_embedder, sweep=[0.85])

    point = asyncio.run(run()).sweep[0]
    print(
        f"qqp sample: verifier P {point.verified.precision:.3f} R {point.verified.recall:.3f}; "
        f"raw P {point.raw.precision:.3f} R {point.raw.recall:.3f}"
    )
    assert point.verified.precision > point.raw.precision
    assert point.verified.recall >= 0.5 * point.raw.recall
