"""Ollama specifics: request shape, model names, base URL, helpful errors."""

from __future__ import annotations

import pytest

from semcache import EmbeddingModelError, Settings, plugins
from semcache_embed_ollama import DEFAULT_BASE_URL, OllamaEmbedder
from semcache_embed_ollama._embedder import base_url_from_env, full_model_name
from tests.embed_providers._fake_servers import FakeServer


async def test_request_shape(ollama: FakeServer) -> None:
    async with OllamaEmbedder(base_url=ollama.url) as e:
        await e.embed(["one", "two"])
    (body,) = ollama.state.requests
    assert body == {"model": "nomic-embed-text", "input": ["one", "two"]}
    assert "authorization" not in ollama.state.headers[0]


async def test_optional_fields_are_sent_when_set(ollama: FakeServer) -> None:
    e = OllamaEmbedder(
        base_url=ollama.url,
        dimensions=256,
        keep_alive="30m",
        truncate=False,
        options={"num_ctx": 512},
    )
    async with e:
        m = await e.embed(["one"])
    assert m.shape == (1, 256)
    body = ollama.state.requests[0]
    assert body["dimensions"] == 256 and body["keep_alive"] == "30m"
    assert body["truncate"] is False and body["options"] == {"num_ctx": 512}


def test_model_id_spells_out_the_implicit_latest_tag() -> None:
    a = OllamaEmbedder("nomic-embed-text")
    b = OllamaEmbedder("nomic-embed-text:latest")
    assert a.model_id == b.model_id == "ollama/nomic-embed-text:latest:dim=768"
    assert OllamaEmbedder("all-minilm:33m").model_id == "ollama/all-minilm:33m:dim=384"
    assert OllamaEmbedder(dimensions=256).model_id == "ollama/nomic-embed-text:latest:dim=256"
    assert full_model_name("hf.co/org/repo") == "hf.co/org/repo:latest"
    assert full_model_name("hf.co/org/repo:Q4_K_M") == "hf.co/org/repo:Q4_K_M"


async def test_missing_model_says_to_pull_it(ollama: FakeServer) -> None:
    async with OllamaEmbedder("bge-large", base_url=ollama.url) as e:
        with pytest.raises(EmbeddingModelError, match=r"HTTP 404.*ollama pull bge-large") as info:
            await e.embed(["hello"])
    assert info.value.status == 404
    assert len(ollama.state.requests) == 1


async def test_chat_model_is_named_as_the_problem(ollama: FakeServer) -> None:
    async with OllamaEmbedder("llama3.2", base_url=ollama.url) as e:
        with pytest.raises(EmbeddingModelError, match=r"llama3\.2 is not an embedding model"):
            await e.embed(["hello"])


def test_base_url_default_env_and_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OllamaEmbedder().base_url == DEFAULT_BASE_URL == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:9000")
    assert OllamaEmbedder().base_url == "http://gpu-box:9000"
    settings = Settings(embedder_type="ollama", embedder_base_url="http://other:11434/api/")
    assert OllamaEmbedder.from_settings(settings).base_url == "http://other:11434"


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("example.com:1234", "http://example.com:1234"),
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("http://[::1]", "http://[::1]:11434"),
        ("", None),
    ],
)
def test_ollama_host_forms(raw: str, url: str | None) -> None:
    assert base_url_from_env({"OLLAMA_HOST": raw}) == url


def test_settings_default_model_and_timeout() -> None:
    e = plugins.create_embedder(Settings(embedder_type="ollama", embedder_timeout_ms=800))
    assert isinstance(e, OllamaEmbedder)
    assert e.model == "nomic-embed-text" and e.timeout == 0.8 and e.dimension == 768
