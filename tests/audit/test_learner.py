"""The per-entry threshold learner: the error bound is kept, few audits are not trusted."""

from __future__ import annotations

import random

import pytest

from semcache.audit import STATE_KEY, AuditState, learn, upper_bound


def test_no_failure_learns_nothing() -> None:
    assert learn([(0.9, True), (0.85, True)], 0.05) == (None, False)
    assert learn([], 0.05) == (None, False)


def test_one_failure_without_evidence_quarantines() -> None:
    assert learn([(0.82, False)], 0.05) == (None, True)
    assert AuditState().add(0.82, False, 0.05).quarantined


@pytest.mark.parametrize("agreeing", [1, 10, 51])
def test_few_agreeing_audits_are_not_enough(agreeing: int) -> None:
    # 95% Wilson bound of 0 errors in n stays above 5% until n = 52.
    samples = [(0.8, False)] + [(0.9, True)] * agreeing
    assert learn(samples, 0.05) == (None, True)


def test_enough_agreeing_audits_above_a_failure_set_the_threshold_above_it() -> None:
    samples = [(0.8, False)] + [(0.9, True)] * 52
    threshold, quarantined = learn(samples, 0.05)
    assert not quarantined
    assert threshold == 0.9 and threshold > 0.8


def test_the_threshold_is_the_lowest_that_keeps_the_bound() -> None:
    # Failures at 0.7 and 0.8. Bounds: all 42 (2 wrong) 13.4%; from 0.8 up, 41 (1 wrong)
    # 10.2%; from 0.85 up, 40 (none wrong) 6.3%.
    samples = [(0.7, False), (0.8, False)] + [(0.85, True)] * 20 + [(0.95, True)] * 20
    assert learn(samples, 0.15) == (None, False)
    assert learn(samples, 0.12) == (0.8, False)
    assert learn(samples, 0.08) == (0.85, False)
    assert learn(samples, 0.05) == (None, True)


def test_a_rare_failure_among_many_agreements_keeps_the_cache_threshold() -> None:
    samples = [(0.8, False)] + [(0.85, True)] * 199
    assert upper_bound(1, 200) <= 0.05
    assert learn(samples, 0.05) == (None, False)


def test_the_bound_holds_for_every_learned_threshold() -> None:
    rng = random.Random(7)
    for _ in range(500):
        n = rng.randint(1, 80)
        samples = [(round(rng.uniform(0.6, 1.0), 3), rng.random() > 0.1) for _ in range(n)]
        bound = rng.choice([0.05, 0.1, 0.2, 0.5])
        threshold, quarantined = learn(samples, bound)
        failures = [s for s, ok in samples if not ok]
        if quarantined or not failures:  # no failure: the cache's own bar is the prior
            continue
        served = [ok for s, ok in samples if threshold is None or s >= threshold]
        assert upper_bound(served.count(False), len(served)) <= bound
        if threshold is not None:
            assert threshold > min(failures)


def test_upper_bound_is_conservative_with_few_samples() -> None:
    assert upper_bound(0, 0) == 1.0
    bounds = [upper_bound(0, n) for n in (1, 5, 20, 100)]
    assert bounds == sorted(bounds, reverse=True)
    assert bounds[0] > 0.5 and bounds[-1] < 0.03
    assert upper_bound(5, 10) > 0.5


def test_state_round_trips_through_metadata() -> None:
    state = AuditState().add(0.91234567, True, 0.05).add(0.8, False, 0.05)
    again = AuditState.of({STATE_KEY: state.to_metadata()})
    assert again == state
    assert state.samples[0][0] == 0.912345  # rounded down: never above the similarity seen
    assert AuditState.of({}) is None
    assert AuditState.of({STATE_KEY: {"s": [["x", 1]]}}) == AuditState(quarantined=True)


def test_quarantine_is_final() -> None:
    state = AuditState().quarantine().add(0.99, True, 0.5)
    assert state.quarantined and not state.allows(1.0)
    assert AuditState(threshold=0.9).allows(0.9) and not AuditState(threshold=0.9).allows(0.89)
