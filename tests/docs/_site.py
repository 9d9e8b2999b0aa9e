"""Paths of the documentation and the settings-table hook, loaded as MkDocs loads it."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

__all__ = ["DOCS", "ROOT", "hooks", "python_blocks"]

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@cache
def hooks() -> ModuleType:
    """``docs/hooks.py`` (not a package: MkDocs loads it by path, and so does this)."""
    spec = importlib.util.spec_from_file_location("semcache_docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown page, in order."""
    import re

    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
