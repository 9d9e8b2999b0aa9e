"""The configuration file: typed values, arrays for list settings, errors at the right line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from semcache import Settings, SettingsError
from semcache.config import ConfigError, load_config, parse_config
from semcache.settings import check_declared, register_settings, setting


@dataclass(frozen=True, slots=True)
class PriceSettings:
    """A group declaring a ``prices`` setting, as a price-table plugin would."""

    group_name: ClassVar[str] = "pricing"
    prices: str | None = setting("SEMANTIC_CACHE_PRICES", None, "A price table.")

    def __post_init__(self) -> None:
        check_declared(self)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.toml")
    return str(caught.value)


def test_values_take_the_settings_types() -> None:
    config = parse_config(
        'threshold = 1\nembedder_model = ""\nproxy_exact_paths = ["*/embeddings", "/api/embed"]\n'
        "client_modes = true\n"
    )
    assert config.settings == {
        "threshold": 1.0,  # an integer where a number is asked
        "embedder_model": None,  # "" is unset for an optional setting
        "proxy_exact_paths": "*/embeddings,/api/embed",
        "client_modes": True,
    }
    assert isinstance(config.settings["threshold"], float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('ttl = "3600"\n', "f.toml, line 1: ttl: '3600' is invalid: expected an integer"),
        (
            "\n\nclient_modes = 1\n",
            "f.toml, line 3: client_modes: 1 is invalid: expected a boolean",
        ),
        (
            "enabled = true\nSEMANTIC_CACHE_TTL = 5\n",
            "line 2: SEMANTIC_CACHE_TTL: unknown setting (did you mean 'ttl'?)",
        ),
        ('identity_headers = ["a", 1]\n', "line 1: identity_headers: expected an array of strings"),
        ('config = "other.toml"\n', "line 1: config: a configuration file cannot name another one"),
        (
            'ttl = 5\n\n[[routes]]\npath = "/a"\n\n[[routes]]\npath = "/b"\nttl = -1\n',
            "line 8: routes[1].ttl: expected an integer of at least 0 (got -1)",
        ),
        (
            '[[routes]]\npath = "/a"\nthreshold = 1.5\n',
            "line 3: routes[0].threshold: expected a number between 0 and 1",
        ),
        (
            '[[routes]]\npath = "/a"\ntenant = ["x"]\n',
            "line 3: routes[0].tenant: unknown route key",
        ),
        ("[[routes]]\nmode = 'exact'\n", "line 1: routes[0]: a route needs a path"),
        (
            '[prices]\n"gpt-4o" = { input = 1, cached = 2 }\n',
            "line 2: prices.gpt-4o.cached: unknown price key",
        ),
        ("routes = 3\n", "line 1: routes: expected an array of tables"),
    ],
)
def test_errors_name_the_line_and_the_key(text: str, expected: str) -> None:
    assert expected in error(text)


def test_a_config_error_is_a_settings_error_and_a_missing_file_says_so(tmp_path: Path) -> None:
    assert issubclass(ConfigError, SettingsError)
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "absent.toml")


def test_the_file_can_be_named_in_code_and_its_settings_validated(tmp_path: Path) -> None:
    path = tmp_path / "semcache.toml"
    path.write_text(
        'ttl = 42\nproxy_timeout = 7\n[[routes]]\npath = "*/embeddings"\nmode = "exact"\n'
    )
    settings = Settings.from_env({}, config=str(path))
    assert settings.ttl == 42
    assert [r.mode for r in settings.routes] == ["exact"]
    assert Settings.from_env({}).routes == ()
    # replace() keeps the file's routes.
    assert settings.replace(ttl=1).routes == settings.routes


def test_a_django_or_flask_configuration_mapping_can_name_the_file(tmp_path: Path) -> None:
    from semcache.http import parse_adapter_config

    path = tmp_path / "semcache.toml"
    path.write_text(
        'ttl = 42\nthreshold = 0.9\n[[routes]]\npath = "*/embeddings"\nmode = "exact"\n'
    )
    settings, _ = parse_adapter_config({"CONFIG": str(path), "ttl": 7})
    assert (settings.ttl, settings.threshold) == (7, 0.9)  # the mapping beats the file
    assert [r.mode for r in settings.routes] == ["exact"]


def test_a_price_needs_both_sides_as_finite_numbers() -> None:
    assert "line 1: prices.m: missing output" in error("prices.m = { input = 1 }\n")
    assert "prices.m.input: expected a number" in error("[prices.m]\ninput = inf\noutput = 1\n")


def test_the_price_table_reaches_a_prices_setting_where_one_is_declared(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import semcache.settings as settings_module

    monkeypatch.setattr(settings_module, "_registered", dict(settings_module._registered))
    monkeypatch.setattr(settings_module, "_discovered", None)
    register_settings(PriceSettings)
    text = '[prices."gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n'
    config = parse_config(text)
    assert config.prices == {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
    path = tmp_path / "semcache.toml"
    path.write_text(text)
    group = Settings.from_env({"SEMANTIC_CACHE_CONFIG": str(path)}).group(PriceSettings)
    assert json.loads(group.prices or "") == {"models": config.prices}
    # The variable still wins, and a string names the setting's file.
    environ = {"SEMANTIC_CACHE_CONFIG": str(path), "SEMANTIC_CACHE_PRICES": "mine.toml"}
    assert Settings.from_env(environ).group(PriceSettings).prices == "mine.toml"
    assert parse_config('prices = "p.toml"\n').settings == {"prices": "p.toml"}
