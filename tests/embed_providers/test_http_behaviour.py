"""Scenarios written once and run against the Ollama, Cohere and Voyage fakes:
batching, retries, auth failures, timeouts, plugin discovery, the cache end to end."""

from __future__ import annotations

import asyncio
import gc
import time

import numpy as np
import pytest

from semcache import (
    EmbedderNotReadyError,
    EmbeddingAPIError,
    EmbeddingAuthError,
    MissingAPIKeyError,
    SemanticCache,
    Settings,
    SettingsError,
    plugins,
)
from semcache_embed_http import RetryPolicy
from tests.embed_providers._fake_servers import Scripted, reference_vectors
from tests.embed_providers.conftest import Provider
from tests.support.ports import free_port

# -- batching ------------------------------------------------------------------------


async def test_batches_split_at_the_provider_limit_keep_order(provider: Provider) -> None:
    e = provider.make(dimensions=provider.small_dimension)
    texts = [f"question {i} about item {i * 3}" for i in range(2 * provider.limit + 1)]
    m = await e.embed(texts)
    await e.aclose()
    # Split batches go out concurrently, so they may arrive in any order.
    sizes = sorted(provider.server.state.batch_sizes(provider.texts_key), reverse=True)
    assert sizes == [provider.limit, provider.limit, 1]
    expected = np.asarray(
        reference_vectors(texts, provider.small_dimension, provider.input_prefix), np.float32
    )
    assert m.shape == expected.shape and m.dtype == np.float32
    np.testing.assert_allclose(m, expected, atol=1e-6)


async def test_max_batch_below_the_limit_splits_smaller(provider: Provider) -> None:
    e = provider.make(max_batch=10)
    texts = [f"text {i}" for i in range(25)]
    m = await e.embed(texts)
    await e.aclose()
    assert sorted(provider.server.state.batch_sizes(provider.texts_key)) == [5, 10, 10]
    other = provider.make()
    single = await other.embed(["text 17"])
    await other.aclose()
    np.testing.assert_allclose(m[17], single[0], atol=1e-6)


async def test_max_batch_above_the_limit_is_clamped(provider: Provider) -> None:
    assert provider.make(max_batch=100_000).max_batch == (
        2048 if provider.name == "ollama" else provider.limit
    )


async def test_empty_batch_sends_nothing(provider: Provider) -> None:
    e = provider.make()
    assert (await e.embed([])).shape[0] == 0
    assert provider.server.state.requests == []


async def test_a_failing_split_batch_fails_the_call(provider: Provider) -> None:
    provider.server.state.script = [Scripted(400, {"message": "bad batch"})]
    e = provider.make(max_batch=1)
    with pytest.raises(EmbeddingAPIError, match="HTTP 400"):
        await e.embed(["a", "b", "c"])
    await e.aclose()


# -- retries -------------------------------------------------------------------------


async def test_429_then_503_then_success(provider: Provider) -> None:
    provider.server.state.script = [
        Scripted(429, {"message": "slow down"}, {"Retry-After": "0"}),
        Scripted(503, {"message": "overloaded"}),
    ]
    e = provider.make()
    m = await e.embed(["reset my password"])
    await e.aclose()
    assert m.shape == (1, e.dimension)
    assert len(provider.server.state.requests) == 3
    assert e.requests == 3


async def test_retry_after_is_honoured(provider: Provider) -> None:
    provider.server.state.script = [Scripted(429, {"message": "wait"}, {"Retry-After": "0.4"})]
    e = provider.make()
    started = time.monotonic()
    await e.embed(["hello"])
    await e.aclose()
    assert time.monotonic() - started >= 0.38
    assert len(provider.server.state.requests) == 2


async def test_a_long_retry_after_fails_at_once(provider: Provider) -> None:
    provider.server.state.script = [Scripted(429, {"message": "quota"}, {"Retry-After": "120"})]
    e = provider.make()
    started = time.monotonic()
    with pytest.raises(EmbeddingAPIError, match=r"HTTP 429 \(it asked to retry after 120 s\)"):
        await e.embed(["hello"])
    assert time.monotonic() - started < 1
    assert len(provider.server.state.requests) == 1


async def test_gives_up_after_max_retries(provider: Provider) -> None:
    provider.server.state.script = [Scripted(503, {"message": "down for maintenance"})] * 5
    e = provider.make(retry=RetryPolicy(max_retries=1, base_delay=0.01))
    with pytest.raises(EmbeddingAPIError) as info:
        await e.embed(["hello"])
    assert info.value.status == 503 and info.value.provider == provider.name
    assert "after 2 attempts" in str(info.value) and "down for maintenance" in str(info.value)
    assert len(provider.server.state.requests) == 2


async def test_client_errors_are_not_retried(provider: Provider) -> None:
    provider.server.state.script = [Scripted(422, {"detail": "input must not be empty"})]
    e = provider.make()
    with pytest.raises(EmbeddingAPIError, match="HTTP 422: input must not be empty"):
        await e.embed(["hello"])
    assert len(provider.server.state.requests) == 1


async def test_timeout_is_retried_then_reported(provider: Provider) -> None:
    stall = 8.0  # far past both attempts' timeouts: only the timeout explains a fast error
    provider.server.state.delay = stall
    e = provider.make(timeout=0.1, retry=RetryPolicy(max_retries=1, base_delay=0.01))
    started = time.monotonic()
    with pytest.raises(EmbeddingAPIError, match=r"did not answer.*Timeout") as info:
        await e.embed(["hello"])
    elapsed = time.monotonic() - started
    assert info.value.status is None
    # Two 0.1 s attempts; a quarter of the stall leaves room for a busy machine.
    assert elapsed < stall / 4, elapsed
    assert e.requests == 2


async def test_connection_refused_is_retried_then_reported(provider: Provider) -> None:
    port = free_port()  # nothing listens there
    e = provider.make(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(EmbeddingAPIError, match=f"127.0.0.1:{port} did not answer.*ConnectError"):
        await e.embed(["hello"])
    assert e.requests == 3


# -- auth ----------------------------------------------------------------------------


async def test_a_rejected_key_names_its_variable(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    if provider.key is None:  # Ollama behind an authenticating proxy
        provider.server.state.api_key = "the-right-one"
    monkeypatch.setenv(provider.key_variable, "wrong-key-789")
    e = provider.make(api_key=None)
    with pytest.raises(EmbeddingAuthError) as info:
        await e.embed(["hello"])
    message = str(info.value)
    assert f"API key from {provider.key_variable}" in message and "HTTP 401" in message
    assert "SEMANTIC_CACHE_EMBEDDER_API_KEY" in message
    assert "wrong-key-789" not in message
    assert len(provider.server.state.requests) == 1  # never retried


async def test_a_rejected_settings_key_names_the_setting(provider: Provider) -> None:
    if provider.key is None:
        provider.server.state.api_key = "the-right-one"
    settings = Settings(
        embedder_type=provider.name, embedder_base_url=provider.server.url, embedder_api_key="nope"
    )
    async with type(provider.make()).from_settings(settings) as e:  # type: ignore[attr-defined]
        with pytest.raises(EmbeddingAuthError, match="from SEMANTIC_CACHE_EMBEDDER_API_KEY"):
            await e.embed(["hello"])


async def test_a_missing_key_is_reported(provider: Provider) -> None:
    if provider.key is None:
        provider.server.state.api_key = "the-right-one"
        e = provider.make()
        with pytest.raises(EmbeddingAuthError, match=r"asked for an API key.*OLLAMA_API_KEY"):
            await e.embed(["hello"])
        return
    with pytest.raises(
        MissingAPIKeyError, match=f"needs an API key.*{provider.key_variable}"
    ) as info:
        provider.make(api_key=None)
    # Both a key problem and a configuration problem: either except clause catches it.
    assert isinstance(info.value, EmbeddingAuthError) and isinstance(info.value, SettingsError)
    assert info.value.provider == provider.name and info.value.status is None


async def test_the_key_is_sent_as_a_bearer_token(provider: Provider) -> None:
    e = provider.make(api_key="k-1")
    provider.server.state.api_key = "k-1"
    await e.embed(["hello"])
    await e.aclose()
    headers = provider.server.state.headers[0]
    assert headers["authorization"] == "Bearer k-1"
    assert headers["user-agent"].startswith(f"semcache-embed-{provider.name}/")


# -- dimensions and model id ---------------------------------------------------------


async def test_model_id_names_model_and_dimension(provider: Provider) -> None:
    e = provider.make(dimensions=provider.small_dimension)
    assert e.model_id.startswith(f"{provider.name}/")
    assert f":dim={provider.small_dimension}" in e.model_id
    assert e.model_id == provider.make(dimensions=provider.small_dimension).model_id
    assert e.model_id != provider.make().model_id
    assert provider.server.state.requests == []  # known up front: no call


async def test_unknown_model_is_probed_once(provider: Provider) -> None:
    e = provider.make(model=provider.unknown_model)
    assert await e.probe_dimension() == provider.unknown_dimension
    assert await e.probe_dimension() == provider.unknown_dimension
    assert f"dim={provider.unknown_dimension}" in e.model_id
    assert len(provider.server.state.requests) == 1


def test_reading_the_dimension_never_does_io(provider: Provider) -> None:
    e = provider.make(model=provider.unknown_model)
    assert not e.dimension_known
    with pytest.raises(EmbedderNotReadyError, match=r"await embedder\.probe_dimension\(\)"):
        _ = e.dimension
    with pytest.raises(EmbedderNotReadyError):
        _ = e.model_id  # it names the size
    assert provider.server.state.requests == []


def test_blocking_probe_from_sync_code(provider: Provider) -> None:
    e = provider.make(model=provider.unknown_model)
    assert e.probe_dimension_blocking() == provider.unknown_dimension
    assert e.dimension == provider.unknown_dimension and e.dimension_known
    assert e.probe_dimension_blocking() == provider.unknown_dimension
    assert len(provider.server.state.requests) == 1


async def test_the_cache_probes_a_given_embedder_when_it_starts(provider: Provider) -> None:
    e = provider.make(model=provider.unknown_model)
    async with SemanticCache(embedder=e, verifier=None, batch_max_size=1) as cache:
        assert len(provider.server.state.requests) == 1
        assert cache.embedder is not None and cache.embedder.dimension == provider.unknown_dimension
        assert await cache.store("how do I reset my password", b"use the reset link")


async def test_a_size_mismatch_says_what_to_set(provider: Provider) -> None:
    provider.server.state.width_override = 100
    e = provider.make()
    with pytest.raises(EmbeddingAPIError, match="returned 100-dimensional vectors") as info:
        await e.embed(["hello"])
    assert "SEMANTIC_CACHE_EMBEDDER_DIMENSIONS=100" in str(info.value)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_works_across_event_loops(provider: Provider) -> None:
    # asyncio.run per call: each loop gets its own connection pool (the finished loop's
    # connections cannot be closed from the next one).
    e = provider.make()
    first = asyncio.run(e.embed(["same text"]))
    second = asyncio.run(e.embed(["same text"]))
    asyncio.run(e.aclose())
    gc.collect()
    np.testing.assert_allclose(first, second)


# -- plugin discovery and the cache ----------------------------------------------------


def _settings(provider: Provider, **kw: object) -> Settings:
    return Settings(
        embedder_type=provider.name,
        embedder_base_url=provider.server.url,
        embedder_api_key=provider.key,
        **kw,  # type: ignore[arg-type]
    )


async def test_plugin_found_through_entry_points(provider: Provider) -> None:
    e = await asyncio.to_thread(plugins.create_embedder, _settings(provider))
    assert type(e) is type(provider.make())
    assert e.model_id == provider.make().model_id
    assert provider.server.state.requests == []
    m = await e.embed(["hello there"])
    assert m.shape == (1, e.dimension)
    await e.aclose()


async def test_plugin_probes_an_unknown_model_at_creation(provider: Provider) -> None:
    settings = _settings(provider, embedder_model=provider.unknown_model)
    e = await asyncio.to_thread(plugins.create_embedder, settings)
    assert len(provider.server.state.requests) == 1
    assert e.dimension == provider.unknown_dimension
    # Also from inside a running loop (the probe moves to a helper thread).
    plugins.create_embedder(settings)
    assert len(provider.server.state.requests) == 2


async def test_plugin_reads_timeout_and_retries_from_settings(provider: Provider) -> None:
    settings = _settings(provider, embedder_timeout_ms=250, embedder_max_retries=5)
    e = plugins.create_embedder(settings)
    assert e.timeout == 0.25 and e.retry.max_retries == 5  # type: ignore[attr-defined]


async def test_semantic_cache_end_to_end(provider: Provider) -> None:
    settings = _settings(provider, threshold=0.6, verifier="none", batch_max_size=8)
    async with SemanticCache(settings) as cache:
        assert await cache.store("how do I reset my password", b"use the reset link")
        hit = await cache.lookup("how do I reset my password please")
        assert hit is not None and hit.source == "semantic" and hit.payload == b"use the reset link"
        assert await cache.lookup("what is the weather in Paris") is None
    assert provider.server.state.requests  # the vectors came from the provider
