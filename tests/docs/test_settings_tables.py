"""Settings tables are generated from the settings declarations when the site is built."""

from __future__ import annotations

import re

import pytest

from semcache.http.config import HTTP_SETTING_NAMES
from semcache.settings import Settings, declared_fields, settings_groups

from ._site import DOCS, hooks


def env_vars(group: type, names: tuple[str, ...] | None = None) -> list[str]:
    return [f.metadata["env"] for f in declared_fields(group) if names is None or f.name in names]


ENV_VARS = [var for group in settings_groups().values() for var in env_vars(group)]


def marker_groups() -> list[str | None]:
    """Every group a page asks for (``None``: the full table)."""
    found: list[str | None] = []
    for page in sorted(DOCS.rglob("*.md")):
        for match in hooks().MARKER.finditer(page.read_text()):
            found.append(match.group("group"))
    return found


def test_the_full_table_names_every_setting_of_every_group() -> None:
    table = hooks()._render(None)
    for var in ENV_VARS:
        assert f"`{var}`" in table, f"{var} missing from the full table"


@pytest.mark.parametrize("group", [g for g in hooks().GROUPS if g in settings_groups()])
def test_a_group_table_names_its_own_settings_only(group: str) -> None:
    table = hooks()._render(group)
    own = set(env_vars(settings_groups()[group]))
    for var in own:
        assert f"`{var}`" in table, f"{var} missing from the {group} table"
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))
    assert listed == own


@pytest.mark.parametrize("adapter", ["django", "flask", "fastapi"])
def test_http_adapter_pages_show_the_settings_the_http_rules_read(adapter: str) -> None:
    table = hooks()._render(adapter)
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))
    assert listed == set(env_vars(Settings, HTTP_SETTING_NAMES))


def test_markers_are_replaced_with_the_table() -> None:
    page = "# Proxy\n\nIntro.\n\n<!-- settings-table: proxy -->\n\nAfter.\n"
    out = hooks().render_markers(page)
    assert "settings-table" not in out
    assert "| Variable | Default | Meaning |" in out
    assert out.startswith("# Proxy\n\nIntro.\n") and out.rstrip().endswith("After.")
    # quoted in prose, a marker is left alone
    prose = "Write `<!-- settings-table: GROUP -->` on a line of its own."
    assert hooks().render_markers(prose) == prose


def test_unknown_group_fails_the_build() -> None:
    with pytest.raises(ValueError, match="unknown settings group 'pgvektor'"):
        hooks().render_markers("<!-- settings-table: pgvektor -->", "stores/pgvector.md")


def test_every_group_has_a_page_and_the_settings_page_has_the_full_table() -> None:
    groups = marker_groups()
    assert None in groups  # the Settings page
    assert set(hooks().GROUPS) <= set(groups)
    assert hooks().MARKER.search((DOCS / "settings.md").read_text())


@pytest.mark.parametrize(
    ("page", "group"),
    [
        ("adapters/proxy.md", "proxy"),
        ("adapters/asgi.md", "fastapi"),
        ("adapters/django.md", "django"),
        ("adapters/flask.md", "flask"),
        ("stores/embedded.md", "embedded"),
        ("stores/pgvector.md", "pgvector"),
        ("stores/redis.md", "redis"),
        ("engine.md", "core"),
        ("operations/savings.md", "telemetry"),
        ("operations/audit.md", "audit"),
    ],
)
def test_each_adapter_and_store_page_shows_its_own_settings(page: str, group: str) -> None:
    text = (DOCS / page).read_text()
    assert [m.group("group") for m in hooks().MARKER.finditer(text)] == [group]


def test_no_settings_table_is_pasted_by_hand() -> None:
    # A row of the generated table in a page means someone pasted it.
    row = re.compile(r"^\| `SEMANTIC_CACHE_\w+` \| (`[^`]*`|\(empty\)) \| ", re.M)
    for page in sorted(DOCS.rglob("*.md")):
        assert not row.search(page.read_text()), f"{page}: settings table pasted by hand"
