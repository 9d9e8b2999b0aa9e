"""Ollama, Cohere and Voyage raise the shared ``semcache.errors`` classes, alike."""

from __future__ import annotations

import pytest

import semcache
from semcache import (
    EmbeddingAPIError,
    EmbeddingAuthError,
    EmbeddingError,
    EmbeddingModelError,
    SemcacheError,
)
from semcache_embed_http import RetryPolicy
from tests.embed_providers._fake_servers import Scripted
from tests.embed_providers.conftest import Provider
from tests.support.ports import free_port


async def test_a_rejected_key_is_an_auth_error_naming_its_variable(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    if provider.key is None:
        provider.server.state.api_key = "the-right-one"
    monkeypatch.setenv(provider.key_variable, "wrong")
    e = provider.make(api_key=None)
    with pytest.raises(EmbeddingAuthError) as info:
        await e.embed(["hello"])
    assert isinstance(info.value, EmbeddingAPIError | EmbeddingError | SemcacheError)
    assert info.value.status == 401 and info.value.provider == provider.name
    assert provider.key_variable in str(info.value)


async def test_a_provider_error_is_an_api_error_with_its_status(provider: Provider) -> None:
    provider.server.state.script = [Scripted(500, {"message": "boom"})] * 3
    e = provider.make(retry=RetryPolicy(max_retries=0))
    with pytest.raises(EmbeddingAPIError) as info:
        await e.embed(["hello"])
    assert type(info.value) is EmbeddingAPIError
    assert info.value.status == 500 and info.value.provider == provider.name
    assert "HTTP 500: boom" in str(info.value)


async def test_no_answer_is_an_api_error_without_status(provider: Provider) -> None:
    port = free_port()  # nothing listens there
    e = provider.make(base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_retries=0))
    with pytest.raises(EmbeddingAPIError) as info:
        await e.embed(["hello"])
    assert info.value.status is None and "did not answer" in str(info.value)


async def test_a_model_the_provider_does_not_serve_is_a_model_error(provider: Provider) -> None:
    e = provider.make(model="no-such-embedding-model")
    with pytest.raises(EmbeddingModelError, match="no-such-embedding-model") as info:
        await e.probe_dimension()
    assert isinstance(info.value, EmbeddingError) and info.value.status in (400, 404)
    assert info.value.provider == provider.name


def test_the_errors_are_the_core_classes() -> None:
    import semcache_embed_cohere
    import semcache_embed_ollama
    import semcache_embed_voyage

    # One definition each, in semcache.errors; the provider packages export none of their own.
    for module in (semcache_embed_cohere, semcache_embed_ollama, semcache_embed_voyage):
        assert not [n for n in module.__all__ if n.endswith("Error")]
    assert semcache.EmbeddingAPIError is semcache.errors.EmbeddingAPIError
