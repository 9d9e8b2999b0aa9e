from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from semcache_embed_openai import OpenAIEmbedder

from .fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """The shared server, reset; and no OpenAI variables from the environment."""
    server.requests.clear()
    server.failures.clear()
    server.rows_missing = 0
    server.api_key = None
    server.held = False
    server.release.clear()
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    return server


@pytest.fixture
async def openai_embedder(fake: FakeOpenAI) -> AsyncIterator[OpenAIEmbedder]:
    embedder = OpenAIEmbedder(
        "text-embedding-3-small",
        dimensions=256,
        api_key="sk-test",
        base_url=fake.url,
        timeout=5,
        max_retries=0,
    )
    yield embedder
    await embedder.aclose()
