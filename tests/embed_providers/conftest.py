"""Fake provider servers (one per session) and a ``provider`` fixture that runs a
scenario against Ollama, Cohere and Voyage alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from semcache_embed_cohere import CohereEmbedder
from semcache_embed_http import HTTPEmbedder, RetryPolicy
from semcache_embed_ollama import OllamaEmbedder
from semcache_embed_voyage import VoyageEmbedder
from tests.embed_providers._fake_servers import (
    FakeServer,
    cohere_server,
    ollama_server,
    voyage_server,
)

COHERE_KEY = "co-test-key-123"
VOYAGE_KEY = "pa-test-key-456"
FAST_RETRY = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)

_KEY_VARIABLES = ("CO_API_KEY", "COHERE_API_KEY", "VOYAGE_API_KEY", "OLLAMA_API_KEY", "OLLAMA_HOST")


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real keys or OLLAMA_HOST must not leak into the tests.
    for var in _KEY_VARIABLES:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def ollama_fake() -> Iterator[FakeServer]:
    server = ollama_server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cohere_fake() -> Iterator[FakeServer]:
    server = cohere_server(COHERE_KEY).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def voyage_fake() -> Iterator[FakeServer]:
    server = voyage_server(VOYAGE_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def ollama(ollama_fake: FakeServer) -> FakeServer:
    ollama_fake.reset()
    return ollama_fake


@pytest.fixture
def cohere(cohere_fake: FakeServer) -> FakeServer:
    cohere_fake.reset()
    return cohere_fake


@pytest.fixture
def voyage(voyage_fake: FakeServer) -> FakeServer:
    voyage_fake.reset()
    return voyage_fake


@dataclass
class Provider:
    """One provider's fake server and how to point an embedder at it."""

    name: str
    server: FakeServer
    make: Callable[..., HTTPEmbedder]
    """Embedder on the fake server with a valid key; keyword arguments override."""
    texts_key: str
    """Where a request body carries its texts."""
    limit: int
    """Texts per request the provider accepts (the default split size)."""
    small_dimension: int
    """A ``dimensions`` value the model accepts, to keep big batches cheap."""
    key: str | None
    key_variable: str
    unknown_model: str
    """A model this package has no size for (probed); the fake serves it."""
    unknown_dimension: int
    input_prefix: str
    """The input-type prompt the fake mixes into each text by default."""
    made: list[HTTPEmbedder] = field(default_factory=list)
    """Every embedder ``make`` built, closed after the test."""


def _keeper(p: Provider) -> Callable[[HTTPEmbedder], HTTPEmbedder]:
    def keep(e: HTTPEmbedder) -> HTTPEmbedder:
        p.made.append(e)
        return e

    return keep


def _ollama(server: FakeServer) -> Provider:
    def make(**kw: Any) -> HTTPEmbedder:
        kw.setdefault("base_url", server.url)
        kw.setdefault("retry", FAST_RETRY)
        return keep(OllamaEmbedder(kw.pop("model", "nomic-embed-text"), **kw))

    p = Provider(
        "ollama", server, make, "input", 32, 64, None, "OLLAMA_API_KEY", "tiny-embed", 48, ""
    )
    keep = _keeper(p)
    return p


def _cohere(server: FakeServer) -> Provider:
    def make(**kw: Any) -> HTTPEmbedder:
        kw.setdefault("base_url", server.url)
        kw.setdefault("retry", FAST_RETRY)
        kw.setdefault("api_key", COHERE_KEY)
        return keep(CohereEmbedder(kw.pop("model", "embed-v4.0"), **kw))

    p = Provider(
        "cohere",
        server,
        make,
        "texts",
        96,
        256,
        COHERE_KEY,
        "CO_API_KEY",
        "tiny-cohere",
        40,
        "search_query",
    )
    keep = _keeper(p)
    return p


def _voyage(server: FakeServer) -> Provider:
    def make(**kw: Any) -> HTTPEmbedder:
        kw.setdefault("base_url", server.url)
        kw.setdefault("retry", FAST_RETRY)
        kw.setdefault("api_key", VOYAGE_KEY)
        return keep(VoyageEmbedder(kw.pop("model", "voyage-3.5"), **kw))

    p = Provider(
        "voyage",
        server,
        make,
        "input",
        1000,
        256,
        VOYAGE_KEY,
        "VOYAGE_API_KEY",
        "tiny-voyage",
        56,
        "query",
    )
    keep = _keeper(p)
    return p


@pytest.fixture(params=["ollama", "cohere", "voyage"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    server = request.getfixturevalue(request.param)
    p = {"ollama": _ollama, "cohere": _cohere, "voyage": _voyage}[request.param](server)
    yield p
    for e in p.made:
        await e.aclose()
