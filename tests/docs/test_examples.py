"""The engine example of the documentation runs as written (adapter examples run in their
packages' tests: tests/fastapi, tests/django_adapter, tests/flask_adapter)."""

from __future__ import annotations

import ast
import contextlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from ._site import DOCS, ROOT, python_blocks


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``SEMANTIC_CACHE_*`` variable: the defaults, as a reader would run the example
    (the real default model, on the embedded stores)."""
    for var in [v for v in os.environ if v.startswith("SEMANTIC_CACHE_")]:
        monkeypatch.delenv(var)


def engine_example(page: Path) -> str:
    blocks = [b for b in python_blocks(page) if "await cache.lookup(" in b]
    assert len(blocks) == 1, page
    return blocks[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [DOCS / "engine.md", DOCS / "getting-started.md"], ids=lambda p: p.name
)
async def test_engine_example_stores_then_serves_a_paraphrase(
    default_settings: None, page: Path
) -> None:
    code = compile(
        engine_example(page), str(page.relative_to(ROOT)), "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(code, namespace)  # a coroutine: the example awaits at top level
        if result is not None:
            await result
    assert namespace["hit"] is not None
    assert out.getvalue().startswith("b'Settings > Account > Reset.'")
    assert out.getvalue().rstrip().endswith("semantic")
