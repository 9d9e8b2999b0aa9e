"""The default settings with the real default model (all-MiniLM-L6-v2), on labelled pairs.

Two sets: ``traps.jsonl``, which the verifier's rules were developed on (asserted at
today's values: a regression there is a regression), and ``heldout.jsonl``, written
apart from it and never used to fit a rule (asserted at floors a little under its
measured values: that is how the rules do on requests they have not seen). The QQP
sample, when the evaluation data is on the machine, is held to the documented full run.

The model loads once per session and each text is embedded once (the evaluation
remembers vectors), so this stays within seconds of model time.
"""

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from semcache import Settings
from semcache.evaluation import Report, evaluate, load_pairs
from semcache.thresholds import default_threshold

from .conftest import HELDOUT, TRAPS

QQP = Path("/work/shared/eval/qqp_dev.jsonl")
TRAP_CATEGORIES = ("negation", "number", "date", "unit", "entity", "scope", "direction", "context")
HELDOUT_TRAP_CATEGORIES = (
    "negation",
    "number",
    "date",
    "unit",
    "entity",
    "scope",
    "direction",
    "comparison",
)
HELDOUT_SHA256 = "e22bb4596fa6d3f7936935ee4f2a5c75c9b5d9626dabb01b6ddcd320051e2de9"
"""The held-out pairs may not be edited to suit a rule: a changed file fails here."""
HELDOUT2 = HELDOUT.with_name("heldout2.jsonl")
HELDOUT2_SHA256 = "5d063f7533a98aca42dc59f4b5c23213068ffcbd0c8c0b9357bd09a690b77da7"
"""The second held-out set is asserted the same way: never edited to suit a result."""
HELDOUT_TRAPS_MAX = 7
"""Measured: 5 of 123 traps served; two more allowed for other CPUs' rounding."""
HELDOUT_PARAPHRASES_MIN = 32
"""Measured: 35 of 64 paraphrases served (55%); three fewer allowed."""
QQP_SAMPLE = 2000
QQP_PRECISION_MIN = 0.78
QQP_RECALL_MIN = 0.35
QQP_FALSE_HIT_MAX = 0.06


@pytest.fixture(scope="session")
def reports(real_embedder: Any) -> dict[str, Report]:
    pairs = load_pairs(TRAPS)
    chats = [p for p in pairs if p.a.context is not None or p.b.context is not None]
    heldout = load_pairs(HELDOUT)

    async def run() -> dict[str, Report]:
        defaults = Settings.from_env({})
        return {
            "default": await evaluate(pairs, defaults, embedder=real_embedder, sweep=[0.5, 0.85]),
            "semantic": await evaluate(
                chats, defaults.replace(context_mode="semantic"), embedder=real_embedder
            ),
            "heldout": await evaluate(heldout, defaults, embedder=real_embedder, sweep=[0.85]),
        }

    return asyncio.run(run())


def _served(report: Report, categories: tuple[str, ...]) -> tuple[int, int]:
    traps = [report.by_category[c] for c in categories]
    return sum(m.false_hits for m in traps), sum(m.negatives for m in traps)


def test_tuning_set_serves_no_traps(reports: dict[str, Report]) -> None:
    # The rules were developed on this set: every trap in it stays unserved.
    report = reports["default"]
    assert report.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert report.threshold == default_threshold(report.model_id)
    served, total = _served(report, TRAP_CATEGORIES)
    print(f"tuning set: traps served at defaults {served}/{total}")
    assert total == 264
    assert served == 0


def test_tuning_set_serves_paraphrases(reports: dict[str, Report]) -> None:
    # Today's counts, less one pair: 123 of 140 paraphrases, 81 of 81 near-repeats.
    cats = reports["default"].by_category
    for name, positives, floor in (("paraphrase", 140, 122), ("near-repeat", 81, 80)):
        m = cats[name]
        print(f"tuning set: {name} recall {m.recall:.3f} ({m.true_hits}/{m.positives})")
        assert m.positives == positives
        assert m.true_hits >= floor, name


def test_heldout_file_is_unchanged() -> None:
    digest = hashlib.sha256(HELDOUT.read_bytes()).hexdigest()
    assert digest == HELDOUT_SHA256, (
        "heldout.jsonl changed: it is held out, never edited to fit a rule "
        "(see tests/data/README.md)"
    )


def test_heldout2_file_is_unchanged() -> None:
    digest = hashlib.sha256(HELDOUT2.read_bytes()).hexdigest()
    assert digest == HELDOUT2_SHA256, (
        "heldout2.jsonl changed: it is held out, never edited to fit a rule "
        "(see tests/data/README.md)"
    )


def test_heldout_set_serves_few_traps(reports: dict[str, Report]) -> None:
    # Measured once, after the rules were fixed; never a reason to change a rule.
    report = reports["heldout"]
    served, total = _served(report, HELDOUT_TRAP_CATEGORIES)
    print(f"held-out set: traps served at defaults {served}/{total}")
    for c in HELDOUT_TRAP_CATEGORIES:
        m = report.by_category[c]
        print(f"  {c}: {m.false_hits}/{m.negatives}")
    assert total == 123
    assert served <= HELDOUT_TRAPS_MAX


def test_heldout_set_serves_paraphrases(reports: dict[str, Report]) -> None:
    m = reports["heldout"].by_category["paraphrase"]
    print(f"held-out set: paraphrase recall {m.recall:.3f} ({m.true_hits}/{m.positives})")
    assert m.positives == 64
    assert m.true_hits >= HELDOUT_PARAPHRASES_MIN


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
    assert semantic["context"].false_hits == 0
    assert semantic["context-paraphrase"].recall > exact["context-paraphrase"].recall
    assert semantic["context-paraphrase"].true_hits >= 35  # 36 of 40 today


@pytest.mark.skipif(not QQP.exists(), reason="qqp_dev.jsonl is not on this machine")
def test_qqp_sample_at_documented_quality(real_embedder: Any) -> None:
    # docs/quality.md, all 71,805 pairs at the default threshold: precision 0.823, recall
    # 0.400, false-hit rate 0.048 (similarity alone: 0.733, 0.591, 0.120). A sample of
    # QQP_SAMPLE pairs is held to those with a margin for sampling error (about two
    # standard errors) and for the rule changes since that run.
    pairs = load_pairs(QQP, limit=QQP_SAMPLE, sample=True, seed=7)

    async def run() -> Report:
        return await evaluate(pairs, Settings.from_env({}), embedder=real_embedder, sweep=[0.85])

    point = asyncio.run(run()).sweep[0]
    v, raw = point.verified, point.raw
    print(
        f"qqp sample of {v.pairs}: verifier P {v.precision:.3f} R {v.recall:.3f} "
        f"FHR {v.false_hit_rate:.3f}; raw P {raw.precision:.3f} R {raw.recall:.3f} "
        f"FHR {raw.false_hit_rate:.3f}"
    )
    assert v.pairs >= 1000
    assert v.precision >= QQP_PRECISION_MIN
    assert v.recall >= QQP_RECALL_MIN
    assert v.false_hit_rate <= QQP_FALSE_HIT_MAX
    assert v.precision > raw.precision
    assert v.false_hit_rate < 0.5 * raw.false_hit_rate
