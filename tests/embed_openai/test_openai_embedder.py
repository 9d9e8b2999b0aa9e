from __future__ import annotations

import asyncio
import time

import numpy as np
import openai
import pytest
import tiktoken

from semcache import (
    EmbedderNotReadyError,
    EmbeddingAPIError,
    EmbeddingAuthError,
    EmbeddingError,
    EmbeddingModelError,
    MissingAPIKeyError,
    SemanticCache,
    Settings,
    SettingsError,
    plugins,
)
from semcache.testing.contracts import EmbedderContract
from semcache_embed_openai import OpenAIEmbedder
from semcache_embed_openai._truncate import Truncator, encoding_name_for
from tests.support.ports import free_port

from .fake_openai import vector


def byte_encoding() -> tiktoken.Encoding:
    """A real tiktoken encoding with one token per byte (no BPE file to fetch)."""
    return tiktoken.Encoding(
        name="bytes",
        pat_str=r"[\s\S]",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )


class TestContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, openai_embedder: OpenAIEmbedder) -> OpenAIEmbedder:
        return openai_embedder


async def test_request_carries_model_dimensions_key_and_format(fake, openai_embedder):
    m = await openai_embedder.embed(["hello world"])
    assert m.shape == (1, 256) and m.dtype == np.float32
    (request,) = fake.requests
    assert request.body["model"] == "text-embedding-3-small"
    assert request.body["dimensions"] == 256
    assert request.body["encoding_format"] == "base64"
    assert request.body["input"] == ["hello world"]
    assert request.headers["authorization"] == "Bearer sk-test"
    expected = vector("hello world", 1536)[:256]
    assert np.allclose(m[0], expected / np.linalg.norm(expected), atol=1e-6)


async def test_rows_follow_the_index_not_the_position(fake, openai_embedder):
    texts = ["alpha beta", "gamma delta", "epsilon zeta"]
    m = await openai_embedder.embed(texts)  # the fake answers in reverse order
    for row, text in zip(m, texts, strict=True):
        v = vector(text, 1536)[:256]
        assert float(row @ (v / np.linalg.norm(v))) > 0.999


def test_model_ids_name_what_changes_vectors(fake):
    def make(model: str, **kw: object) -> OpenAIEmbedder:
        return OpenAIEmbedder(model, api_key="k", base_url=fake.url, **kw)  # type: ignore[arg-type]

    assert make("text-embedding-3-small").model_id == "openai/text-embedding-3-small"
    assert make("text-embedding-3-small").dimension == 1536
    # asking for the native size changes nothing, so it is neither sent nor in the id
    assert (
        make("text-embedding-3-small", dimensions=1536).model_id == "openai/text-embedding-3-small"
    )
    assert make("text-embedding-3-large", dimensions=256).model_id == (
        "openai/text-embedding-3-large:dim=256"
    )
    assert make("text-embedding-ada-002").dimension == 1536
    fixed = make("fixed-768", dimensions=768, send_dimensions_to_api=False)
    assert fixed.model_id == "openai/fixed-768" and fixed.dimension == 768
    assert make("x", dimensions=8, model_id="mine/v2").model_id == "mine/v2"
    with pytest.raises(ValueError, match="cannot shorten"):
        make("text-embedding-ada-002", dimensions=512)
    # A model of unknown size: nothing is asked until probe_dimension(), and reading the
    # size before that says so instead of calling the API.
    unknown = make("some-other-model")
    with pytest.raises(EmbedderNotReadyError, match="probe_dimension"):
        _ = unknown.dimension
    assert unknown.model_id == "openai/some-other-model"
    assert fake.requests == []


async def test_fixed_size_model_gets_no_dimensions_parameter(fake):
    e = OpenAIEmbedder(
        "fixed-768", dimensions=768, send_dimensions_to_api=False, api_key="k", base_url=fake.url
    )
    try:
        assert (await e.embed(["hi there"])).shape == (1, 768)
        assert "dimensions" not in fake.requests[-1].body
    finally:
        await e.aclose()


async def test_declared_size_is_checked(fake):
    e = OpenAIEmbedder(
        "fixed-768", dimensions=512, send_dimensions_to_api=False, api_key="k", base_url=fake.url
    )
    try:
        with pytest.raises(EmbeddingAPIError, match=r"768-dimensional vectors.*expected 512"):
            await e.embed(["hi"])
    finally:
        await e.aclose()


async def test_missing_rows_are_an_error_not_a_shift(fake, openai_embedder):
    fake.rows_missing = 1
    with pytest.raises(EmbeddingAPIError, match="2 embeddings for 3 inputs"):
        await openai_embedder.embed(["a", "b", "c"])


async def test_environment_variables_are_honoured(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    e = OpenAIEmbedder()
    try:
        await e.embed(["hello"])
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-from-env"
    finally:
        await e.aclose()


def test_no_key_for_openai_itself_is_a_clear_error(fake):
    with pytest.raises(
        MissingAPIKeyError, match="SEMANTIC_CACHE_EMBEDDER_API_KEY or OPENAI_API_KEY"
    ) as info:
        OpenAIEmbedder()
    assert isinstance(info.value, EmbeddingAuthError | SettingsError)
    assert isinstance(info.value, ValueError)  # as before: a configuration error
    assert info.value.provider == "openai" and info.value.status is None


async def test_local_server_needs_no_key(fake):
    e = OpenAIEmbedder("fixed-768", dimensions=768, send_dimensions_to_api=False, base_url=fake.url)
    try:
        assert (await e.embed(["hello"])).shape == (1, 768)
    finally:
        await e.aclose()


async def test_empty_text_is_embedded_not_refused(fake, openai_embedder):
    m = await openai_embedder.embed(["", "hello"])
    assert m.shape == (2, 256)
    assert fake.requests[-1].body["input"][0] == " "


async def test_more_than_2048_inputs_are_split(fake, openai_embedder):
    texts = [f"question {i}" for i in range(2050)]
    m = await openai_embedder.embed(texts)
    assert m.shape == (2050, 256)
    assert [len(r.body["input"]) for r in fake.requests] == [2048, 2]
    v = vector("question 2049", 1536)[:256]
    assert float(m[2049] @ (v / np.linalg.norm(v))) > 0.999


async def test_retries_then_succeeds(fake):
    e = OpenAIEmbedder("text-embedding-3-small", api_key="k", base_url=fake.url, max_retries=2)
    try:
        fake.fail_next(2, 500)
        assert (await e.embed(["hello"])).shape == (1, 1536)
        assert len(fake.requests) == 3
        fake.fail_next(1, 429)
        assert (await e.embed(["hello"])).shape == (1, 1536)
    finally:
        await e.aclose()


async def test_no_retries_surface_the_error(fake, openai_embedder):
    fake.fail_next(1, 503)
    with pytest.raises(
        EmbeddingAPIError, match="OpenAI answered HTTP 503: scripted failure"
    ) as info:
        await openai_embedder.embed(["hello"])
    assert type(info.value) is EmbeddingAPIError
    assert info.value.status == 503 and info.value.provider == "openai"
    assert isinstance(info.value.__cause__, openai.InternalServerError)
    assert len(fake.requests) == 1


async def test_timeout(fake):
    e = OpenAIEmbedder(
        "text-embedding-3-small", api_key="k", base_url=fake.url, timeout=0.2, max_retries=0
    )
    fake.held = True
    started = time.perf_counter()
    try:
        with pytest.raises(EmbeddingAPIError, match=r"did not answer.*Timeout") as info:
            await e.embed(["hello"])
        assert info.value.status is None
        assert isinstance(info.value.__cause__, openai.APITimeoutError)
        assert time.perf_counter() - started < 3
    finally:
        fake.release.set()
        await e.aclose()


async def test_long_inputs_are_refused_without_truncation(fake):
    e = OpenAIEmbedder(
        "text-embedding-3-small",
        api_key="k",
        base_url=fake.url,
        max_input_tokens=10**9,
        max_retries=0,
    )
    try:
        with pytest.raises(EmbeddingAPIError, match=r"HTTP 400.*context length"):
            await e.embed(["word " * 5000])
    finally:
        await e.aclose()


async def test_long_inputs_are_cut_with_tiktoken(fake):
    e = OpenAIEmbedder(
        "text-embedding-3-small", api_key="k", base_url=fake.url, encoding=byte_encoding()
    )
    try:
        long = "a" * 8190 + "é" + "word " * 2000  # token 8191 is half of "é"
        m = await e.embed([long, "short"])
        assert m.shape == (2, 1536)
        sent = fake.requests[-1].body["input"]
        assert sent == ["a" * 8190, "short"]  # the split character is dropped, not mangled
    finally:
        await e.aclose()


async def test_long_inputs_are_cut_by_bytes_when_tiktoken_cannot_load(fake):
    e = OpenAIEmbedder(
        "text-embedding-3-small", api_key="k", base_url=fake.url, encoding="no-such-encoding"
    )
    try:
        long = "日本語のテキスト" * 3000  # 3 bytes a character: the cut lands mid-character
        await e.embed([long])
        sent = fake.requests[-1].body["input"][0]
        assert len(sent.encode()) <= 8191 and long.startswith(sent)
        assert len(sent.encode()) > 8191 - 3
    finally:
        await e.aclose()


def test_truncator_only_works_on_long_texts():
    t = Truncator(100, byte_encoding())
    assert not t.needed(["short", "x" * 100])
    assert t.needed(["x" * 101])
    assert not t.needed(["é" * 25])  # 50 bytes
    assert t.needed(["é" * 51])  # 102 bytes
    assert t(["x" * 150, "ok"]) == ["x" * 100, "ok"]
    assert t(["a<|endoftext|>b" * 20])[0] == ("a<|endoftext|>b" * 20)[:100]


def test_tiktoken_encoding_names_need_no_download():
    assert encoding_name_for("text-embedding-3-small") == "cl100k_base"
    assert encoding_name_for("some-local-model") == "cl100k_base"


async def test_plugin_builds_it_from_settings(fake):
    settings = Settings(
        embedder_type="openai",
        embedder_model="text-embedding-3-large",
        embedder_dimensions=256,
        embedder_base_url=fake.url,
        embedder_api_key="sk-settings",
        embedder_timeout_ms=3000,
        embedder_max_retries=1,
    )
    e = await asyncio.to_thread(plugins.create_embedder, settings)
    try:
        assert isinstance(e, OpenAIEmbedder)
        assert e.model_id == "openai/text-embedding-3-large:dim=256" and e.dimension == 256
        assert e.client.timeout == 3.0 and e.client.max_retries == 1
        await e.embed(["hi"])
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-settings"
        assert fake.requests[-1].body["dimensions"] == 256
    finally:
        await e.aclose()


async def test_plugin_asks_an_unknown_model_its_size(fake):
    settings = Settings(
        embedder_type="openai", embedder_model="any-local-model", embedder_base_url=fake.url
    )
    e = await asyncio.to_thread(plugins.create_embedder, settings)
    try:
        assert e.dimension == 64 and e.model_id == "openai/any-local-model"
        assert (await e.embed(["hi"])).shape == (1, 64)
        assert "dimensions" not in fake.requests[-1].body
    finally:
        await e.aclose()


async def test_semantic_cache_end_to_end_with_batching(fake):
    e = OpenAIEmbedder("text-embedding-3-small", api_key="k", base_url=fake.url)
    async with SemanticCache(embedder=e, threshold=0.8, verifier=None) as cache:
        await cache.store("how do I reset my password", b"reset-answer")
        await cache.store("what is the capital of france", b"paris")
        fake.requests.clear()
        queries = [f"how do I reset my password {i}" for i in range(16)] + [
            f"what is the capital of france {i}" for i in range(16)
        ]
        hits = await asyncio.gather(*(cache.lookup(q) for q in queries))
        assert all(h is not None for h in hits)
        assert [h.payload for h in hits] == [b"reset-answer"] * 16 + [b"paris"] * 16  # type: ignore[union-attr]
        assert 1 <= len(fake.requests) <= 2  # 32 lookups, one or two API calls


# -- the shared errors, as every semcache embedder raises them --------------------------


async def test_a_rejected_key_is_an_auth_error_naming_its_variable(fake, monkeypatch):
    fake.api_key = "sk-the-right-one"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    e = OpenAIEmbedder("text-embedding-3-small", base_url=fake.url, max_retries=0)
    try:
        with pytest.raises(EmbeddingAuthError) as info:
            await e.embed(["hello"])
    finally:
        await e.aclose()
    message = str(info.value)
    assert info.value.status == 401 and info.value.provider == "openai"
    assert "rejected the API key from OPENAI_API_KEY" in message
    assert "SEMANTIC_CACHE_EMBEDDER_API_KEY or OPENAI_API_KEY" in message
    assert "sk-wrong" not in message
    assert len(fake.requests) == 1  # never retried


async def test_a_rejected_settings_key_names_the_setting(fake):
    fake.api_key = "sk-the-right-one"
    settings = Settings(
        embedder_type="openai",
        embedder_base_url=fake.url,
        embedder_api_key="nope",
        embedder_max_retries=0,
    )
    e = OpenAIEmbedder.from_settings(settings)
    try:
        with pytest.raises(EmbeddingAuthError, match="from SEMANTIC_CACHE_EMBEDDER_API_KEY"):
            await e.embed(["hello"])
    finally:
        await e.aclose()


async def test_an_unknown_model_is_a_model_error(fake, openai_embedder):
    e = OpenAIEmbedder("no-such-model", api_key="k", base_url=fake.url, max_retries=0)
    try:
        with pytest.raises(EmbeddingModelError, match="no-such-model") as info:
            await e.probe_dimension()
    finally:
        await e.aclose()
    assert isinstance(info.value, EmbeddingError) and info.value.status == 404


async def test_an_unreachable_server_is_an_api_error_without_status(fake):
    port = free_port()  # nothing listens there
    e = OpenAIEmbedder(
        "text-embedding-3-small",
        api_key="k",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_retries=0,
    )
    try:
        with pytest.raises(EmbeddingAPIError, match=f"127.0.0.1:{port}/v1 did not answer") as info:
            await e.embed(["hello"])
    finally:
        await e.aclose()
    assert info.value.status is None


async def test_probe_dimension_learns_an_unknown_size_once(fake):
    e = OpenAIEmbedder("any-local-model", base_url=fake.url)
    try:
        assert await e.probe_dimension() == 64
        assert await e.probe_dimension() == 64 and e.dimension == 64
        assert len(fake.requests) == 1
    finally:
        await e.aclose()


async def test_the_cache_probes_a_given_embedder_when_it_starts(fake):
    e = OpenAIEmbedder("any-local-model", base_url=fake.url)
    async with SemanticCache(embedder=e, verifier=None, batch_max_size=1) as cache:
        assert len(fake.requests) == 1 and e.dimension == 64
        assert await cache.store("how do I reset my password", b"use the reset link")
