"""Which hits are audited: rate, path and model filters, the hourly budgets."""

from __future__ import annotations

from semcache.audit import AuditSampler, AuditSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_off_by_default() -> None:
    sampler = AuditSampler(AuditSettings())
    assert not sampler.enabled
    assert not sampler.wants("/v1/chat/completions", "gpt-4o")


def test_rate_samples_that_share() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.99])
    sampler = AuditSampler(AuditSettings(audit_rate=0.1), rng=lambda: next(draws))
    assert [sampler.wants("/p", None) for _ in range(4)] == [True, False, True, False]


def test_paths_and_models_filter() -> None:
    settings = AuditSettings(audit_rate=1.0, audit_paths="/v1/chat/*", audit_models="a, b")
    sampler = AuditSampler(settings)
    assert sampler.wants("/v1/chat/completions", "a")
    assert not sampler.wants("/v1/completions", "a")
    assert not sampler.wants("/v1/chat/completions", "c")
    assert not sampler.wants("/v1/chat/completions", None)


def test_the_call_budget_is_per_hour() -> None:
    clock = Clock()
    sampler = AuditSampler(AuditSettings(audit_rate=1.0, audit_budget=2), clock=clock)
    assert [sampler.acquire(None) for _ in range(3)] == [None, None, "budget"]
    clock.now += 3599
    assert sampler.acquire(None) == "budget"
    clock.now += 2
    assert sampler.acquire(None) is None


def test_the_dollar_cap() -> None:
    clock = Clock()
    settings = AuditSettings(audit_rate=1.0, audit_budget=100, audit_max_usd=0.01)
    sampler = AuditSampler(settings, clock=clock)
    assert sampler.acquire(0.006) is None
    assert sampler.acquire(0.006) == "spend"
    assert sampler.acquire(0.004) is None  # exactly at the cap
    assert sampler.acquire(None) is None  # unpriced calls cost nothing here
    clock.now += 3601
    assert sampler.acquire(0.009) is None


def test_a_zero_budget_turns_audits_off() -> None:
    sampler = AuditSampler(AuditSettings(audit_rate=1.0, audit_budget=0))
    assert not sampler.enabled and not sampler.wants("/p", None)
