"""Cohere specifics: request shape, input types, output dimensions, keys."""

from __future__ import annotations

import numpy as np
import pytest

from semcache import EmbeddingAuthError, Settings, SettingsError
from semcache_embed_cohere import CohereEmbedder
from tests.embed_providers._fake_servers import FakeServer, Scripted
from tests.embed_providers.conftest import COHERE_KEY


def make(server: FakeServer, **kw: object) -> CohereEmbedder:
    kw.setdefault("api_key", COHERE_KEY)
    return CohereEmbedder(base_url=server.url, **kw)  # type: ignore[arg-type]


async def test_request_shape(cohere: FakeServer) -> None:
    async with make(cohere) as e:
        m = await e.embed(["one", "two"])
    assert m.shape == (2, 1536)
    (body,) = cohere.state.requests
    assert body == {
        "model": "embed-v4.0",
        "texts": ["one", "two"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }
    headers = cohere.state.headers[0]
    assert headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert headers["x-client-name"] == "semcache"


async def test_output_dimension_is_sent_for_embed_v4(cohere: FakeServer) -> None:
    async with make(cohere, dimensions=512) as e:
        assert (await e.embed(["one"])).shape == (1, 512)
    assert cohere.state.requests[0]["output_dimension"] == 512
    assert e.model_id == "cohere/embed-v4.0:dim=512:input=search_query"


def test_output_dimension_is_checked_up_front() -> None:
    with pytest.raises(SettingsError, match=r"not offered by embed-v4\.0: expected 256, 512"):
        CohereEmbedder(api_key="k", dimensions=300)
    with pytest.raises(SettingsError, match=r"embed-english-v3\.0 always returns 1024"):
        CohereEmbedder("embed-english-v3.0", api_key="k", dimensions=512)
    fixed = CohereEmbedder("embed-english-v3.0", api_key="k", dimensions=1024)
    assert fixed.dimension == 1024


async def test_native_size_of_a_v3_model_sends_no_output_dimension(cohere: FakeServer) -> None:
    async with make(cohere, model="embed-english-v3.0", dimensions=1024) as e:
        assert (await e.embed(["one"])).shape == (1, 1024)
    assert "output_dimension" not in cohere.state.requests[0]


async def test_input_type_changes_vectors_and_model_id(cohere: FakeServer) -> None:
    async with make(cohere) as q, make(cohere, input_type="search_document") as d:
        a, b = await q.embed(["reset my password"]), await d.embed(["reset my password"])
    assert not np.allclose(a, b)
    assert q.model_id.endswith(":input=search_query")
    assert d.model_id.endswith(":input=search_document")
    assert [r["input_type"] for r in cohere.state.requests] == ["search_query", "search_document"]


def test_input_type_aliases_and_errors() -> None:
    assert CohereEmbedder(api_key="k", input_type="document").input_type == "search_document"
    assert CohereEmbedder(api_key="k", input_type=" Clustering ").input_type == "clustering"
    assert CohereEmbedder(api_key="k", input_type=None).input_type == "search_query"
    with pytest.raises(SettingsError, match="SEMANTIC_CACHE_EMBEDDER_INPUT_TYPE='image'"):
        CohereEmbedder(api_key="k", input_type="image")


def test_settings_map_onto_the_embedder() -> None:
    s = Settings(
        embedder_type="cohere",
        embedder_model="embed-english-light-v3.0",
        embedder_api_key="k",
        embedder_input_type="classification",
        embedder_base_url="https://proxy.example.com/v2/",
    )
    e = CohereEmbedder.from_settings(s)
    assert e.model_id == "cohere/embed-english-light-v3.0:dim=384:input=classification"
    assert e.base_url == "https://proxy.example.com"
    assert e.key_source == "SEMANTIC_CACHE_EMBEDDER_API_KEY"


def test_key_variables_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", "second")
    assert CohereEmbedder().key_source == "COHERE_API_KEY"
    monkeypatch.setenv("CO_API_KEY", "first")
    e = CohereEmbedder()
    assert (e.api_key, e.key_source) == ("first", "CO_API_KEY")
    assert CohereEmbedder(api_key="given").key_source == "the api_key argument"


async def test_498_invalid_token_is_an_auth_error(cohere: FakeServer) -> None:
    cohere.state.script = [Scripted(498, {"message": "invalid token"})]
    async with make(cohere) as e:
        with pytest.raises(EmbeddingAuthError, match="HTTP 498: invalid token"):
            await e.embed(["hello"])
