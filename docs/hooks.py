"""MkDocs hook: settings tables are generated at build time from the settings declarations.

A page writes ``<!-- settings-table -->`` on a line of its own for every setting, or
``<!-- settings-table: GROUP -->`` for one group (``core``, ``proxy``, ``pgvector``,
``redis``, ``embedded``, ``telemetry``, ``django``, ``flask``, ``fastapi``); the marker is
replaced by the Markdown table. Tables are never pasted into the pages by hand.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["GROUPS", "MARKER", "on_page_markdown", "render_markers"]

#: The groups a page may ask for, one per part that declares settings.
GROUPS = (
    "core",
    "proxy",
    "pgvector",
    "redis",
    "embedded",
    "telemetry",
    "audit",
    "judge",
    "django",
    "flask",
    "fastapi",
)

#: ``<!-- settings-table -->`` or ``<!-- settings-table: GROUP -->``, alone on its line (so a
#: marker quoted in prose or in a code block stays as it is).
MARKER = re.compile(
    r"^[ \t]*<!--\s*settings-table(?:\s*:\s*(?P<group>[\w-]+))?\s*-->[ \t]*$", re.MULTILINE
)


def _render(group: str | None) -> str:
    """The Markdown settings table of ``group`` (``None``: every setting).

    The one place that knows where settings are declared: each plugin and adapter
    declares its own group (``semcache.settings.settings_groups()``). The ASGI, Django
    and Flask adapters have no group of their own: their knobs are the engine settings
    that the HTTP rules read.
    """
    from semcache.http.config import HTTP_SETTING_NAMES
    from semcache.settings import settings_table

    if group in _HTTP_ADAPTERS:
        return settings_table("core", names=HTTP_SETTING_NAMES)
    return settings_table(group)


_HTTP_ADAPTERS = ("django", "flask", "fastapi")


def render_markers(markdown: str, where: str = "page") -> str:
    """Replace every settings-table marker in ``markdown`` with its generated table."""

    def table(match: re.Match[str]) -> str:
        group = match.group("group")
        if group is not None and group not in GROUPS:
            raise ValueError(f"{where}: unknown settings group {group!r} (one of {GROUPS})")
        return "\n" + _render(group) + "\n"

    return MARKER.sub(table, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    try:
        return render_markers(markdown, page.file.src_uri)
    except ValueError as exc:
        raise PluginError(str(exc)) from exc
