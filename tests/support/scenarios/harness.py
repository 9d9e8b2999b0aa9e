"""What a scenario gets: a running app behind the cache, its backend, and a client."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from tests.support.scenarios.backend import Backend

__all__ = ["Harness", "Scenario", "build_cache", "loopback_client", "settings_for_tests"]

THRESHOLD = 0.8


def settings_for_tests(**overrides: Any) -> Settings:
    """Settings for a test cache: no environment, in-memory stores, short budgets."""
    base: dict[str, Any] = {
        "threshold": THRESHOLD,
        "vector_store": "memory",
        "response_store": "memory",
        "embedder_type": "testing-hash",
        "upstream_429_threshold": 0,
    }
    base.update(overrides)
    return Settings.from_env({}, **base)


def build_cache(**overrides: Any) -> SemanticCache:
    """A fast, deterministic cache for tests (hashing embedder, threshold 0.8)."""
    return SemanticCache(settings_for_tests(**overrides), embedder=HashingTestEmbedder())


def loopback_client() -> httpx.Client:
    """A client for a real server on a loopback port."""
    return httpx.Client(timeout=30, trust_env=False)


@dataclass
class Harness:
    """A running test app (any adapter) behind the semantic cache.

    ``cache`` lives in the server's thread and loop: read its ``counters`` only.
    ``client_factory`` makes more clients like ``client`` (a test client's transport
    instead of a socket, for instance). ``chunked_requests`` is False where the
    framework drops chunked request bodies (Django under WSGI).
    """

    base_url: str
    backend: Backend
    cache: SemanticCache
    client: httpx.Client
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    client_factory: Callable[[], httpx.Client] = loopback_client
    chunked_requests: bool = True

    def new_client(self) -> httpx.Client:
        """Another client for the same app (one per thread in concurrency scenarios)."""
        return self.client_factory()

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(self.base_url + path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.base_url + path, **kwargs)

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.stream(method, self.base_url + path, **kwargs)

    def stores(self) -> int:
        """Answers the cache has stored so far."""
        return self.cache.counters["stores"]

    def wait_stores(self, count: int) -> None:
        """Wait until ``count`` answers are stored (the write follows the response)."""
        assert self.backend.wait_for(lambda: self.stores() >= count), (
            f"expected {count} stored answers, have {self.stores()}"
        )

    def ask(self, question: str, path: str = "/api/answer", **extra: Any) -> httpx.Response:
        """POST ``{"query": question, **extra}``."""
        return self.post(path, json={"query": question, **extra})


@dataclass(frozen=True)
class Scenario:
    """One behaviour every adapter must show; ``settings`` configure the cache it runs with."""

    name: str
    run: Callable[[Harness], None]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name
