"""`semcache tune` and fitted verifier levels: the fit, the file, and the cache loading it."""

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from semcache import SemanticCache
from semcache.cli import main
from semcache.errors import SettingsError
from semcache.evaluation import load_pairs
from semcache.testing import HashingTestEmbedder
from semcache.text import normalize_query
from semcache.verify import DefaultVerifier
from semcache.verify.levels import Levels, ShapeTable, fit_levels, load_levels, rates, served

from .conftest import TINY

DATA = Path(__file__).resolve().parents[1] / "data"
HASH = ["--embedder", "testing-hash"]


@pytest.fixture(autouse=True)
def _clean_env(clean_cache_env: None) -> None:
    """No SEMANTIC_CACHE_* setting of the shell changes what is measured here."""


def test_vectorised_levels_agree_with_the_verifier() -> None:
    """`served` is the fit's copy of DefaultVerifier.check; at any levels and similarity
    both must give the same verdict on real pairs, or the fit optimises something else."""
    pairs = [p for p in load_pairs(DATA / "traps.jsonl") if p.a.context is None]
    rng = random.Random(3)
    for _ in range(12):
        levels = Levels(
            threshold=rng.choice([0.6, 0.75, 0.85, 0.9]),
            top=rng.choice([0.86, 0.92, 0.97]),
            step=rng.choice([0.0, 0.02, 0.05]),
            question_gap=rng.choice([0.0, 0.02, 0.05]),
        )
        verifier = DefaultVerifier(**levels.verifier_options())
        sims, hard, edits, other, expected = [], [], [], [], []
        for p in pairs:
            q, c = normalize_query(p.b.query), normalize_query(p.a.query)
            s = rng.uniform(0.55, 1.0)
            shape = verifier.shape(q, c)
            sims.append(s)
            hard.append(shape.rule is not None)
            edits.append(shape.edits)
            other.append(shape.other_question)
            expected.append(s >= levels.threshold and verifier.check(q, c, s).accepted)
        table = ShapeTable(
            np.array(sims),
            np.array(hard),
            np.array(edits),
            np.array(other),
            np.ones(len(sims), dtype=bool),
        )
        assert served(table, levels).tolist() == expected, levels


def _table(rows: list[tuple[float, bool, float, bool, bool]]) -> ShapeTable:
    s, h, e, o, y = zip(*rows, strict=True)
    return ShapeTable(np.array(s), np.array(h), np.array(e, dtype=float), np.array(o), np.array(y))


def test_the_fit_serves_more_without_passing_the_bound() -> None:
    # Paraphrases with one differing word at 0.90 (today's levels need 0.92: refused), a
    # trap with one differing word at 0.88, unrelated pairs, near-repeats.
    everyday = _table(
        [(0.90, False, 1, False, True)] * 6
        + [(0.88, False, 1, False, False)] * 2
        + [(0.70, False, 0, False, False)] * 4
        + [(0.96, False, 0, False, True)] * 4
    )
    traps = _table([(0.95, True, 0, False, False)] * 5 + [(0.97, False, 0, False, True)] * 5)
    current = Levels()
    sets = {"everyday": everyday, "traps": traps}
    bounds = {name: rates(t.same_answer, served(t, current))[1] for name, t in sets.items()}
    assert bounds == {"everyday": 0.0, "traps": 0.0}
    fitted = fit_levels(sets, bounds, start=current)
    recall, false_hits, _ = rates(everyday.same_answer, served(everyday, fitted))
    assert recall == 1.0  # the one-word paraphrases at 0.90 are served now
    assert false_hits == 0.0  # the one-word trap at 0.88 still is not
    # A hard rule is never relaxed, whatever the bound.
    assert not served(traps, fitted)[:5].any()
    loose = fit_levels(sets, {"everyday": 1.0, "traps": 1.0}, start=current)
    assert not served(traps, loose)[:5].any()


def test_the_fit_gives_up_recall_that_would_cost_false_hits() -> None:
    # One-word paraphrases at 0.90 come with one-word traps at 0.91: no level serves the
    # first without the second, so within a zero bound the fit must serve neither.
    table = _table(
        [(0.90, False, 1, False, True)] * 6
        + [(0.91, False, 1, False, False)] * 2
        + [(0.97, False, 0, False, True)] * 2
    )
    fitted = fit_levels({"x": table}, {"x": 0.0})
    assert rates(table.same_answer, served(table, fitted))[1] == 0.0
    loose = fit_levels({"x": table}, {"x": 1.0})
    assert rates(table.same_answer, served(table, loose))[0] == 1.0


def test_nothing_better_keeps_the_current_levels() -> None:
    table = _table([(0.99, False, 0, False, True), (0.99, False, 0, False, False)])
    start = Levels(threshold=0.83, top=0.91)
    assert fit_levels({"x": table}, {"x": 1.0}, start=start) == start


def test_tune_cli_writes_a_file_the_cache_applies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "levels.json"
    traps = DATA / "traps.jsonl"
    assert (
        main(["tune", str(traps), str(TINY), *HASH, "--folds", "3", "--quiet", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "3-fold cross-validation" in text
    assert "traps.jsonl" in text and "tiny_pairs.jsonl" in text
    data = json.loads(out.read_text())
    assert data["format"] == 1
    assert data["model_id"] == HashingTestEmbedder().model_id
    sets = data["notes"]["cross_validation"]["sets"]
    assert [s["name"] for s in sets] == ["traps.jsonl", "tiny_pairs.jsonl"]
    levels = load_levels(out)

    # The cache takes the threshold and the verifier's levels from the file...
    monkeypatch.setenv("SEMANTIC_CACHE_VERIFIER_PARAMS", str(out))
    edited = json.loads(out.read_text())
    edited.update(threshold=0.61, top=0.97)
    out.write_text(json.dumps(edited))
    cache = SemanticCache(embedder=HashingTestEmbedder())
    assert isinstance(cache.verifier, DefaultVerifier)
    assert cache.verifier.top == 0.97
    assert cache.threshold == 0.61
    assert levels.model_id == HashingTestEmbedder().model_id


async def test_levels_for_another_model_are_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "levels.json"
    path.write_text(Levels(threshold=0.61, top=0.97, model_id="some/other-model").to_json())
    monkeypatch.setenv("SEMANTIC_CACHE_VERIFIER_PARAMS", str(path))
    with caplog.at_level(logging.WARNING, logger="semcache"):
        async with SemanticCache(embedder=HashingTestEmbedder()) as cache:
            await cache.start()
            assert cache.threshold != 0.61
            assert isinstance(cache.verifier, DefaultVerifier)
            assert cache.verifier.top == DefaultVerifier().top
    assert "fitted for some/other-model" in caplog.text


@pytest.mark.parametrize(
    "content",
    ["", "{not json", '{"format": 2}', '{"format": 1, "top": 1.5}', '{"format": 1, "step": "x"}'],
)
def test_a_broken_levels_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    path = tmp_path / "levels.json"
    path.write_text(content)
    monkeypatch.setenv("SEMANTIC_CACHE_VERIFIER_PARAMS", str(path))
    with pytest.raises(SettingsError, match=r"levels\.json"):
        SemanticCache(embedder=HashingTestEmbedder())


def test_a_missing_levels_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMANTIC_CACHE_VERIFIER_PARAMS", str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match=r"missing\.json"):
        SemanticCache(embedder=HashingTestEmbedder())


def test_eval_measures_with_a_levels_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "levels.json"
    path.write_text(Levels(threshold=0.999, model_id=HashingTestEmbedder().model_id).to_json())
    args = ["eval", str(TINY), *HASH, "--json", "--quiet"]
    assert main(args) == 0
    before = json.loads(capsys.readouterr().out)
    assert main([*args, "--verifier-params", str(path)]) == 0
    after = json.loads(capsys.readouterr().out)
    assert before["threshold"] != 0.999
    assert after["threshold"] == 0.999
