"""The examples of the package README and of docs/adapters/httpx.md run as written, against
the fake upstream (the SDKs read their base URL and key from the environment)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from semcache.sync import loop_thread
from semcache_httpx import destination_of
from semcache_proxy.testing import FakeLLM

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "packages" / "semcache-httpx" / "README.md"
PAGE = ROOT / "docs" / "adapters" / "httpx.md"
EXAMPLE_PAGES = [README, PAGE]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch, upstream: str) -> None:
    """A plain ``SemanticCache()`` on the test embedder and memory; the SDKs at the fake."""
    for var in [v for v in os.environ if v.startswith("SEMANTIC_CACHE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("SEMANTIC_CACHE_EMBEDDER_TYPE", "testing-hash")
    monkeypatch.setenv("SEMANTIC_CACHE_THRESHOLD", "0.8")
    monkeypatch.setenv("SEMANTIC_CACHE_VECTOR_STORE", "memory")
    monkeypatch.setenv("SEMANTIC_CACHE_RESPONSE_STORE", "memory")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


def run(code: str, page: Path) -> tuple[dict[str, Any], str]:
    namespace: dict[str, Any] = {"__name__": "__example__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(page), "exec"), namespace)
    return namespace, out.getvalue()


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_openai_example_miss_then_hit(example_env: None, fake: FakeLLM, page: Path) -> None:
    code = python_blocks(page)[0]
    assert "OpenAI(http_client=httpx_client(cache))" in code
    namespace, out = run(code, page)
    try:
        assert out.split() == ["miss", "hit"]
        assert (
            namespace["first"]
            == namespace["second"]
            == ("Answer #1 to: What is the capital of France?")
        )
        assert fake.calls == 1
    finally:
        loop_thread().run(namespace["cache"].close(), 30)


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_async_anthropic_stream_example_miss_then_hit(
    example_env: None, fake: FakeLLM, page: Path
) -> None:
    code = python_blocks(page)[1]
    assert "AsyncAnthropic(http_client=async_httpx_client(cache))" in code
    _, out = run(code, page)
    answer = "Answer #1 to: What is the capital of France?"
    assert out.splitlines() == [f"miss {answer}", f"hit {answer}"]
    assert fake.calls == 1


def test_upstreams_example_names_the_proxy_upstream(example_env: None) -> None:
    code = python_blocks(PAGE)[2]
    namespace, _ = run(code, PAGE)
    try:
        transport = namespace["client"]._client._transport
        upstreams = transport._rules.upstreams
        assert upstreams == ("https://gateway.example.com/openai",)
        url = "https://gateway.example.com/openai/v1/chat/completions"
        assert destination_of(url, upstreams) == (
            "https://gateway.example.com/openai",
            "/v1/chat/completions",
        )
    finally:
        loop_thread().run(namespace["cache"].close(), 30)
