"""The embedder contract every semcache embedder passes, against each fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from semcache.testing.contracts import EmbedderContract
from semcache_embed_cohere import CohereEmbedder
from semcache_embed_ollama import OllamaEmbedder
from semcache_embed_voyage import VoyageEmbedder
from tests.embed_providers._fake_servers import FakeServer
from tests.embed_providers.conftest import COHERE_KEY, FAST_RETRY, VOYAGE_KEY


class TestOllamaContract(EmbedderContract):
    @pytest.fixture
    async def embedder(self, ollama: FakeServer) -> AsyncIterator[OllamaEmbedder]:
        e = OllamaEmbedder("nomic-embed-text", base_url=ollama.url, retry=FAST_RETRY)
        yield e
        await e.aclose()


class TestOllamaProbedModelContract(EmbedderContract):
    @pytest.fixture
    async def embedder(self, ollama: FakeServer) -> AsyncIterator[OllamaEmbedder]:
        e = OllamaEmbedder("tiny-embed", base_url=ollama.url, retry=FAST_RETRY)
        assert await e.probe_dimension() == 48
        yield e
        await e.aclose()


class TestCohereContract(EmbedderContract):
    @pytest.fixture
    async def embedder(self, cohere: FakeServer) -> AsyncIterator[CohereEmbedder]:
        e = CohereEmbedder(api_key=COHERE_KEY, base_url=cohere.url, retry=FAST_RETRY)
        yield e
        await e.aclose()


class TestVoyageContract(EmbedderContract):
    @pytest.fixture
    async def embedder(self, voyage: FakeServer) -> AsyncIterator[VoyageEmbedder]:
        e = VoyageEmbedder(api_key=VOYAGE_KEY, base_url=voyage.url, retry=FAST_RETRY)
        yield e
        await e.aclose()
