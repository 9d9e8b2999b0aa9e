"""The savings ledger: totals per model, route and tenant, with capped labels."""

from __future__ import annotations

import pytest

from semcache.telemetry import OTHER, Saving, SavingsLedger


def test_totals_per_label_and_overall() -> None:
    ledger = SavingsLedger()
    ledger.record(
        Saving(10, 5, 0.5, 0.001), model="gpt-4o", route="/v1/chat/completions", tenant="acme"
    )
    ledger.record(
        Saving(10, 5, 0.25, 0.001), model="gpt-4o", route="/v1/chat/completions", tenant="acme"
    )
    ledger.record(Saving(3, 0, 1.0, None), model=None, route="/api/chat", tenant="anonymous")
    summary = ledger.summary()
    total = summary["total"]
    assert (total["hits"], total["input_tokens"], total["output_tokens"], total["tokens"]) == (
        3,
        23,
        10,
        33,
    )
    assert total["seconds"] == pytest.approx(1.75)
    assert total["usd"] == pytest.approx(0.002)
    assert total["unpriced_hits"] == 1
    assert summary["by_model"]["gpt-4o"]["hits"] == 2
    assert summary["by_model"]["unknown"]["input_tokens"] == 3
    assert summary["by_tenant"]["acme"]["tokens"] == 30
    assert summary["by_route"]["/api/chat"]["seconds"] == pytest.approx(1.0)


def test_labels_past_the_cap_count_as_other() -> None:
    ledger = SavingsLedger(max_labels=2)
    for tenant in ("a", "b", "c", "d", "a"):
        ledger.record(Saving(1, 1, 0.0, 0.0), model="m", route="/r", tenant=tenant)
    by_tenant = ledger.summary()["by_tenant"]
    assert set(by_tenant) == {"a", "b", OTHER}
    assert by_tenant["a"]["hits"] == 2 and by_tenant[OTHER]["hits"] == 2
    assert len(ledger.rows()) == 3
