import dataclasses
import re

import pytest

from semcache import Settings, SettingsError, env
from semcache.settings import declared_fields, settings_table
from semcache.stores.settings import EmbeddedStoreSettings


def test_defaults_need_no_environment():
    s = Settings.from_env({})
    assert s.enabled is True
    assert s.threshold is None
    assert s.ttl == 86400
    assert s.vector_store == "auto"


def test_reads_every_kind_of_variable():
    s = Settings.from_env(
        {
            env.ENABLED: "off",
            env.THRESHOLD: "0.93",
            env.TTL: "60",
            env.DATA_PATH: "/tmp/x",
            env.EMBEDDER_TYPE: "openai",
            env.EMBEDDER_DIMENSIONS: "256",
        }
    )
    assert (s.enabled, s.threshold, s.ttl) == (False, 0.93, 60)
    assert s.group(EmbeddedStoreSettings).data_path == "/tmp/x"
    assert (s.embedder_type, s.embedder_dimensions) == ("openai", 256)


def test_empty_optional_value_means_unset():
    assert Settings.from_env({env.THRESHOLD: ""}).threshold is None


def test_code_overrides_win_over_environment():
    s = Settings.from_env({env.TTL: "60"}, ttl=5)
    assert s.ttl == 5
    assert s.replace(ttl=7).ttl == 7


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().ttl = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (
            env.THRESHOLD,
            "1.5",
            "SEMANTIC_CACHE_THRESHOLD='1.5' is invalid: expected a number between 0 and 1",
        ),
        (
            env.THRESHOLD,
            "high",
            "SEMANTIC_CACHE_THRESHOLD='high' is invalid: expected a number between 0 and 1",
        ),
        (env.TTL, "-1", "SEMANTIC_CACHE_TTL='-1' is invalid: expected an integer of at least 0"),
        (
            env.TOP_K,
            "0",
            "SEMANTIC_CACHE_TOP_K='0' is invalid: expected an integer between 1 and 100",
        ),
        (env.ENABLED, "maybe", "SEMANTIC_CACHE_ENABLED='maybe' is invalid: expected a boolean"),
        (
            env.AUTH_MODE,
            "open",
            "SEMANTIC_CACHE_AUTH_MODE='open' is invalid: expected one of partition, bypass, shared",
        ),
        (
            "SEMANTIC_CACHE_PROXY_PORT",  # the proxy's own group, validated all the same
            "70000",
            "SEMANTIC_CACHE_PROXY_PORT='70000' is invalid: expected an integer between 1 and 65535",
        ),
    ],
)
def test_invalid_values_name_the_variable_and_range(var, value, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({var: value})
    assert str(info.value).startswith(message)


def test_invalid_override_is_rejected_too():
    with pytest.raises(SettingsError, match="SEMANTIC_CACHE_THRESHOLD"):
        Settings(threshold=2.0)
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.from_env({}, thresold=0.5)


def test_every_core_field_has_a_constant_in_env_module():
    names = {getattr(env, n) for n in env.__all__}
    for f in declared_fields(Settings) + declared_fields(EmbeddedStoreSettings):
        assert f.metadata["env"] in names
        assert f.metadata["env"] == "SEMANTIC_CACHE_" + f.name.upper()


def test_secrets_are_masked_in_repr():
    s = Settings.from_env({}, redis_uri="redis://:hunter2@host/0", admin_token="tok")
    assert "hunter2" not in repr(s) and "tok'" not in repr(s)


def test_settings_table_has_one_row_per_setting_with_its_default():
    # The documentation's settings tables are rendered from this at build time (tests/docs).
    rows = settings_table("core").splitlines()[2:]
    fields = declared_fields(Settings)
    assert len(rows) == len(fields)
    for row, f in zip(rows, fields, strict=True):
        match = re.match(r"\| `(\w+)` \| ([^|]+) \| (.+) \|$", row)
        assert match, row
        assert match.group(1) == f.metadata["env"]
        assert (match.group(2) == "(empty)") == (f.default is None), row
        assert match.group(3) == f.metadata["doc"]
