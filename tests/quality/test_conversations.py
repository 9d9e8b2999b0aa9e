"""Long conversations with the real model: `context_mode="turns"` against the other modes.

``conversations.jsonl`` is the development set the turn matcher's levels were chosen on
(asserted at today's values); ``conversations_heldout.jsonl`` was written apart from it
and never used to choose anything (asserted at its first measurement, with a margin).
"""

import asyncio
import hashlib
from typing import Any

import pytest
from benchmarks.context_crowd import crowd_pairs

from semcache import Settings
from semcache.evaluation import Report, evaluate, load_pairs

from .conftest import TRAPS

DEVELOPMENT = TRAPS.with_name("conversations.jsonl")
HELDOUT = TRAPS.with_name("conversations_heldout.jsonl")
HELDOUT_SHA256 = "61a48e00ee370fe5dc96be482d9541a37421f3ad5dbee36ae73c872936aa8ec9"
SECOND = TRAPS.with_name("conversations_heldout2.jsonl")
SECOND_SHA256 = "d4b3c203ede718909700a3d2bf71394cf3879c5a2467d188bb72653a11c58aa6"
THIRD = TRAPS.with_name("conversations_heldout3.jsonl")
THIRD_SHA256 = "d598b3519855341235bea87049c97a1c29c5be7e93bd2b8f5ea885ee304cc804"
FOURTH = TRAPS.with_name("conversations_heldout4.jsonl")
FOURTH_SHA256 = "e6cde0aa37ae91c0061aa428df67c07a156fdbf2849b344eb515b63147aa28a5"
FIFTH = TRAPS.with_name("conversations_heldout5.jsonl")
FIFTH_SHA256 = "be6cce94fcb8e7923ee2c6787ed53abc1ed385aafed5bf541823790287fbf05b"
SHOULD_HIT = ("same-history", "padded-history", "irrelevant-history", "reworded-history")
SWAPS = ("context-swap", "detail-swap", "assistant-fact-swap", "paraphrased-swap")
TRAPS_ALL = (*SWAPS, "intent-flip", "negation-flip")


@pytest.fixture(scope="session")
def conversation_reports(real_embedder: Any) -> dict[str, Report]:
    async def run() -> dict[str, Report]:
        base = Settings.from_env({})
        out = {}
        sets = (
            ("dev", DEVELOPMENT),
            ("heldout", HELDOUT),
            ("second", SECOND),
            ("third", THIRD),
            ("fourth", FOURTH),
            ("fifth", FIFTH),
        )
        for name, path in sets:
            pairs = load_pairs(path)
            for mode in ("exact", "semantic", "turns"):
                out[f"{name}/{mode}"] = await evaluate(
                    pairs, base.replace(context_mode=mode), embedder=real_embedder
                )
        return out

    return asyncio.run(run())


def _count(report: Report, categories: tuple[str, ...], attr: str) -> int:
    return sum(getattr(report.by_category[c], attr) for c in categories)


@pytest.mark.parametrize(
    ("path", "sha256"),
    [
        (HELDOUT, HELDOUT_SHA256),
        (SECOND, SECOND_SHA256),
        (THIRD, THIRD_SHA256),
        (FOURTH, FOURTH_SHA256),
        (FIFTH, FIFTH_SHA256),
    ],
)
def test_heldout_conversations_are_unchanged(path: Any, sha256: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == sha256, f"{path.name} changed: it is held out, never edited to fit a rule"


def test_development_set_turns_serves_same_and_chatter_padded_histories_and_no_trap(
    conversation_reports: dict[str, Report],
) -> None:
    report = conversation_reports["dev/turns"]
    cats = report.by_category
    assert _count(report, TRAPS_ALL, "false_hits") == 0
    # Measured: 15/15 identical; 5/15 padded (the others' chatter says something: "one
    # sec, let me grab my laptop", "brb, doorbell"). An exchange about something else is
    # another conversation (it may hold an instruction the answer followed): 0/15, where
    # leaving such turns out served 15 (and 14 padded).
    assert cats["same-history"].true_hits == 15
    assert cats["padded-history"].true_hits >= 4
    assert cats["irrelevant-history"].true_hits == 0


def test_heldout_conversations_turns_serves_more_than_exact_and_fewer_traps_than_semantic(
    conversation_reports: dict[str, Report],
) -> None:
    turns = conversation_reports["heldout/turns"]
    semantic = conversation_reports["heldout/semantic"]
    exact = conversation_reports["heldout/exact"]
    hits = {
        m: _count(r, SHOULD_HIT, "true_hits")
        for m, r in (("turns", turns), ("semantic", semantic), ("exact", exact))
    }
    traps = {
        m: _count(r, TRAPS_ALL, "false_hits")
        for m, r in (("turns", turns), ("semantic", semantic), ("exact", exact))
    }
    print(f"held-out conversations: should-hit served {hits}, traps served {traps}")
    # First measurement: turns 42 of 61 and 2 of 63 traps; semantic 20 and 2; exact 0 and 0.
    # The two traps were flipped turns scored as unrelated on both sides; since turns
    # mode refuses a turn replaced on both sides: turns 42 and 0. Since it refuses a
    # turn that says something on one side only: 16 and 0.
    assert hits["turns"] >= 14
    assert traps["turns"] == 0
    assert _count(turns, SWAPS, "false_hits") == 0  # context and detail swaps: never
    assert hits["turns"] > hits["exact"]
    assert traps["turns"] < traps["semantic"]
    assert traps["exact"] == 0


def _hits_and_traps(report: Report) -> tuple[int, int]:
    return _count(report, SHOULD_HIT, "true_hits"), _count(report, TRAPS_ALL, "false_hits")


def test_second_set_turns_serves_no_trap(conversation_reports: dict[str, Report]) -> None:
    # A development set for the local-edit and particle rules: measured with the
    # replaced-turn rule at 43 of 60 and 5 of 62 traps (without it, 7); then 43 and 0;
    # since a turn that says something on one side only is refused, 18 and 0.
    hits, traps = _hits_and_traps(conversation_reports["second/turns"])
    assert traps == 0
    assert hits >= 16


@pytest.mark.parametrize(
    ("name", "min_hits", "max_traps"),
    [
        # First measurement: turns 43 of 60 and 1 of 62 traps (an intent flip: who sends
        # the parcel to whom); the turn matcher as it was before the replaced-turn,
        # local-edit and particle rules: 43 and 4. Semantic 26 and 2; exact 0 and 0. That
        # one trap then led to the verifier's role-swap rule, so for that rule the set is
        # development data: since, 43 and 0. Since a turn that says something on one
        # side only is refused (none of the unrelated exchanges is served): 16 and 0.
        ("third", 14, 0),
        # First and only measurement, with every rule above already in place: turns 36 of
        # 60 and 0 of 62 traps (padded histories 7 of 15, reworded 0 of 15); semantic 28
        # and 3; exact 0 and 0. Unseen by every rule: never fit anything to it. Since a
        # turn that says something on one side only is refused: 15 and 0.
        ("fourth", 13, 1),
        # First and only measurement, as the fourth: turns 42 of 60 and 0 of 62 traps
        # (same history 13, padded 15, unrelated exchange 14, reworded 0, of 15 each);
        # semantic 27 and 1; exact 0 and 0. Never fit anything to it. Since a turn that
        # says something on one side only is refused: 20 and 0 (same history 13, padded 7).
        ("fifth", 17, 1),
    ],
)
def test_later_heldout_sets_turns_serves_more_than_exact_and_no_swap(
    conversation_reports: dict[str, Report], name: str, min_hits: int, max_traps: int
) -> None:
    turns = conversation_reports[f"{name}/turns"]
    hits, traps = _hits_and_traps(turns)
    exact = _hits_and_traps(conversation_reports[f"{name}/exact"])
    semantic = _hits_and_traps(conversation_reports[f"{name}/semantic"])
    print(f"{name} held-out set: turns {hits, traps}, semantic {semantic}, exact {exact}")
    assert hits >= min_hits
    assert traps <= max_traps
    assert _count(turns, SWAPS, "false_hits") == 0
    assert hits > exact[0]
    assert traps <= semantic[1]
    assert exact == (0, 0)


@pytest.mark.parametrize(("path", "min_hits"), [(FOURTH, 13), (FIFTH, 14)])
def test_turns_mode_finds_each_conversation_among_all_that_end_in_one_follow_up(
    real_embedder: Any, path: Any, min_hits: int
) -> None:
    # Every pair ends in "How much will that cost me?" and every cached conversation is in
    # one partition (python -m benchmarks.context_crowd). Measured: fourth set 15 of 60
    # and 0 of 49 traps, fifth 16 of 60 and 0 of 52; with the vector search's top_k
    # alone (no own-entry lookup, no choice by earlier turns): 9 and 5.
    pairs = crowd_pairs(path)
    settings = Settings.from_env({}, context_mode="turns")
    report = asyncio.run(evaluate(pairs, settings, embedder=real_embedder, crowded=True))
    print(f"{path.name} crowded: {report.overall}, foreign {report.foreign_hits}")
    assert report.foreign_hits == []
    assert report.overall.false_hits == 0
    assert report.overall.true_hits >= min_hits
