"""The LangChain examples of the documentation and the package README run as written."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.globals import get_llm_cache

from semcache import sync
from semcache_langchain import SemanticLLMCache

ROOT = Path(__file__).resolve().parents[2]
# The package README (PyPI) and the documentation page carry the same example; both run.
EXAMPLE_PAGES = [
    ROOT / "packages" / "semcache-langchain" / "README.md",
    ROOT / "docs" / "adapters" / "langchain.md",
]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def printed(page: Path) -> list[str]:
    """The lines the page says the example prints (the ```text block after it), if any."""
    found = re.search(r"```python\n.*?```\n\nprints\n\n```text\n(.*?)```", page.read_text(), re.S)
    return found.group(1).splitlines() if found else []


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``SEMANTIC_CACHE_*`` variable: the defaults, as a reader would run the example
    (the real default model, on the embedded stores)."""
    for var in [v for v in os.environ if v.startswith("SEMANTIC_CACHE_")]:
        monkeypatch.delenv(var)


@pytest.mark.slow
@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_example_serves_a_paraphrase_and_asks_again_at_another_temperature(
    default_settings: None, real_embedder: Any, page: Path
) -> None:
    # real_embedder: skipped where the default model is not installed.
    namespace: dict[str, Any] = {"__name__": "example"}
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(python_blocks(page)[0], namespace)
    finally:
        installed = get_llm_cache()
        if isinstance(installed, SemanticLLMCache):
            sync.run(installed.cache.close(), 30)
    lines = out.getvalue().splitlines()
    assert lines == [
        "Settings > Account > Reset.",
        "Settings > Account > Reset.",
        "(asked the model again)",
    ]
    if page.suffix == ".md" and "docs" in page.parts:
        assert printed(page) == lines


def test_the_docs_page_is_in_the_nav_and_the_package_map() -> None:
    assert "adapters/langchain.md" in (ROOT / "mkdocs.yml").read_text()
    packages = (ROOT / "docs" / "packages.md").read_text()
    assert "| `semcache-langchain` | `semcache_langchain` |" in packages
