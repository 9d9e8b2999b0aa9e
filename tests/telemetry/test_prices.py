"""The price table: shipped defaults, matching dated model names, the file and inline forms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from semcache import SemanticCache, Settings, SettingsError
from semcache.http import HttpCacheEngine
from semcache.telemetry import TelemetrySettings, default_prices, load_prices, parse_prices
from semcache.testing import HashingTestEmbedder


def test_defaults_price_common_models_and_their_dated_versions() -> None:
    table = default_prices()
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    # A dated or tagged version is priced as the longest known name it starts with.
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini")
    assert table.price("gpt-4o-2024-08-06") == table.price("gpt-4o")
    assert table.price("o1-mini-2024-09-12") == table.price("o1-mini") != table.price("o1")
    assert table.price("claude-3-5-haiku-20241022") == table.price("claude-3-5-haiku")
    assert table.price("models/gemini-1.5-flash") == table.price("gemini-1.5-flash")
    assert table.price("GPT-4O") == table.price("gpt-4o")
    # A prefix must end at a separator: "gpt-4oz" is not "gpt-4o"; unknown models cost nothing.
    assert table.price("gpt-4oz") is None
    assert table.cost("llama3:8b", 100, 100) is None
    assert table.cost(None, 100, 100) is None


def test_a_file_adds_models_and_overrides_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "prices.toml"
    toml.write_text(
        '[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n[models.llama3]\ninput = 0.01\noutput = 0.02\n'
    )
    table = load_prices(str(toml))
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(1.0)
    assert table.cost("llama3:70b", 0, 1_000_000) == pytest.approx(0.02)
    assert table.price("gpt-4o") == default_prices().price("gpt-4o")  # the rest kept
    as_json = tmp_path / "prices.json"
    as_json.write_text(json.dumps({"models": {"mine": {"input": 3, "output": 4}}}))
    assert load_prices(str(as_json)).cost("mine", 1_000_000, 1_000_000) == pytest.approx(7.0)
    inline = load_prices('{"models": {"mine": {"input": 5, "output": 0}}}')
    assert inline.cost("mine-v2", 2_000_000, 9) == pytest.approx(10.0)


def test_a_config_table_is_parsed_the_same_way() -> None:
    # What a config file's [prices] table hands over: with or without the "models" level.
    assert parse_prices({"mine": {"input": 1, "output": 1}}).cost("mine", 10**6, 0) == 1.0
    assert (
        parse_prices({"models": {"mine": {"input": 2, "output": 1}}}).cost("mine", 10**6, 0) == 2.0
    )


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"models": {"m": {"input": -1, "output": 1}}}, "prices.models.m.input"),
        ({"models": {"m": {"input": 1, "output": "cheap"}}}, "prices.models.m.output"),
        (
            {"models": {"m": {"input": 1, "output": 1, "cached": 1}}},
            "prices.models.m: unknown key(s) cached",
        ),
        ({"models": {"m": 3}}, "prices.models.m"),
        ({"models": {}, "currency": "EUR"}, "prices: unknown key(s) currency"),
        ({"m": {"input": True, "output": 1}}, "prices.m.input"),
    ],
)
def test_bad_tables_name_the_key(data: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        parse_prices(data)


def test_bad_files_fail_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match="cannot read"):
        load_prices(str(missing))
    broken = tmp_path / "broken.toml"
    broken.write_text("[models.m\ninput = 1")
    with pytest.raises(SettingsError, match=r"broken\.toml is invalid"):
        load_prices(str(broken))
    with pytest.raises(SettingsError, match="inline JSON is invalid"):
        load_prices("{not json")


def test_the_setting_reaches_the_group() -> None:
    settings = Settings.from_env({"SEMANTIC_CACHE_PRICES": '{"x": {"input": 1, "output": 1}}'})
    assert settings.group(TelemetrySettings).prices == '{"x": {"input": 1, "output": 1}}'
    with pytest.raises(SettingsError, match="SEMANTIC_CACHE_SAVINGS_MAX_LABELS"):
        Settings.from_env({"SEMANTIC_CACHE_SAVINGS_MAX_LABELS": "0"})


def test_a_configuration_files_prices_reach_the_engines_table(tmp_path: Path) -> None:
    config = tmp_path / "semcache.toml"
    config.write_text('[prices."house-model"]\ninput = 1000\noutput = 0\n')
    settings = Settings.from_env({"SEMANTIC_CACHE_CONFIG": str(config)})
    engine = HttpCacheEngine(SemanticCache(settings, embedder=HashingTestEmbedder()))
    assert engine.prices.cost("house-model-v2", 1_000_000, 5) == pytest.approx(1000.0)
    assert engine.prices.price("gpt-4o") == default_prices().price("gpt-4o")  # defaults kept
