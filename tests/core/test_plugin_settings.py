"""A third-party plugin declares its own setting: validated, in ``--help``, in the docs tables.

The plugin is a real distribution on ``sys.path`` (a ``.dist-info`` with an entry point
``settings.acme`` in group ``semcache``), found the way any installed plugin is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = """
from dataclasses import dataclass
from typing import ClassVar

from semcache.settings import check_declared, setting


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    group_name: ClassVar[str] = "acme"

    acme_level: int = setting(
        "SEMANTIC_CACHE_ACME_LEVEL", 2, "How hard the acme plugin tries.", low=1, high=5
    )

    def __post_init__(self) -> None:
        check_declared(self)
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "acme_semcache.py").write_text(PLUGIN)
    info = root / "acme_semcache-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-semcache\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[semcache]\nsettings.acme = acme_semcache:AcmeSettings\n"
    )
    return root


def run(
    plugin_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    environ["PYTHONPATH"] = str(plugin_path)
    environ.update(env or {})
    return subprocess.run(args, capture_output=True, text=True, env=environ, timeout=120)


def python(plugin_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(plugin_path, sys.executable, "-c", textwrap.dedent(code), env=env)


def test_the_setting_is_read_and_validated(plugin_path):
    ok = python(
        plugin_path,
        """
        from acme_semcache import AcmeSettings
        from semcache import Settings
        print(Settings.from_env().group(AcmeSettings).acme_level)
        print(Settings.from_env(acme_level=4).group(AcmeSettings).acme_level)
        """,
        SEMANTIC_CACHE_ACME_LEVEL="3",
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["3", "4"]

    bad = python(
        plugin_path,
        "from semcache import Settings; Settings.from_env()",
        SEMANTIC_CACHE_ACME_LEVEL="9",
    )
    assert bad.returncode != 0
    assert (
        "SEMANTIC_CACHE_ACME_LEVEL='9' is invalid: expected an integer between 1 and 5"
        in bad.stderr
    )

    code_value = python(
        plugin_path, "from semcache import Settings; Settings.from_env(acme_level=0)"
    )
    assert "SEMANTIC_CACHE_ACME_LEVEL=0 is invalid" in code_value.stderr


def test_the_setting_is_in_the_proxy_help(plugin_path):
    proxy = Path(sys.executable).with_name("semcache-proxy")
    result = run(plugin_path, str(proxy), "--help")
    assert result.returncode == 0, result.stderr
    assert "acme:" in result.stdout
    assert "SEMANTIC_CACHE_ACME_LEVEL [default 2]: How hard the acme plugin tries." in result.stdout


def test_the_setting_is_in_the_generated_tables(plugin_path):
    result = python(
        plugin_path,
        """
        from semcache.settings import settings_table
        print(settings_table("acme"))
        print("=====")
        print(settings_table())
        """,
    )
    assert result.returncode == 0, result.stderr
    own, everything = result.stdout.split("=====")
    row = "| `SEMANTIC_CACHE_ACME_LEVEL` | `2` | How hard the acme plugin tries. |"
    assert row in own and row in everything
    assert "SEMANTIC_CACHE_TTL" not in own and "SEMANTIC_CACHE_TTL" in everything


def test_the_setting_is_on_the_generated_settings_page(plugin_path):
    hooks = Path(__file__).resolve().parents[2] / "docs" / "hooks.py"
    result = python(
        plugin_path,
        f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("hooks", {str(hooks)!r})
        hooks = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hooks)
        print(hooks.render_markers("# Settings\\n\\n<!-- settings-table -->\\n"))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "| `SEMANTIC_CACHE_ACME_LEVEL` | `2` | How hard the acme plugin tries. |" in result.stdout
    )


def test_without_the_plugin_its_name_is_unknown():
    from semcache import Settings, SettingsError

    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.from_env({}, acme_level=3)
