"""Voyage specifics: request shape, input types, token budget, output dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from semcache import Settings, SettingsError
from semcache_embed_voyage import VoyageEmbedder
from tests.embed_providers._fake_servers import FakeServer, reference_vectors
from tests.embed_providers.conftest import VOYAGE_KEY


def make(server: FakeServer, **kw: object) -> VoyageEmbedder:
    kw.setdefault("api_key", VOYAGE_KEY)
    return VoyageEmbedder(base_url=server.url, **kw)  # type: ignore[arg-type]


async def test_request_shape(voyage: FakeServer) -> None:
    async with make(voyage) as e:
        m = await e.embed(["one", "two"])
    assert m.shape == (2, 1024)
    (body,) = voyage.state.requests
    assert body == {"model": "voyage-3.5", "input": ["one", "two"], "input_type": "query"}
    assert voyage.state.headers[0]["authorization"] == f"Bearer {VOYAGE_KEY}"


async def test_vectors_follow_the_index_not_the_list_order(voyage: FakeServer) -> None:
    texts = ["alpha beta", "gamma delta", "epsilon zeta"]
    async with make(voyage) as e:
        m = await e.embed(texts)
    np.testing.assert_allclose(m, np.asarray(reference_vectors(texts, 1024, "query")), atol=1e-6)


async def test_batches_stay_within_the_model_token_budget(voyage: FakeServer) -> None:
    big = "lorem ipsum dolor sit amet " * 1850  # ~50 KB: two fit in voyage-3-large's 120K
    texts = [f"{i} {big}" for i in range(4)]
    async with make(voyage, model="voyage-3-large") as e:
        m = await e.embed(texts)
    assert m.shape == (4, 1024)
    assert sorted(voyage.state.batch_sizes("input")) == [2, 2]


async def test_no_input_type_sends_null(voyage: FakeServer) -> None:
    async with make(voyage, input_type="none") as e, make(voyage) as q:
        a, b = await e.embed(["reset my password"]), await q.embed(["reset my password"])
    assert voyage.state.requests[0]["input_type"] is None
    assert e.model_id == "voyage/voyage-3.5:dim=1024:input=none"
    assert q.model_id == "voyage/voyage-3.5:dim=1024:input=query"
    assert not np.allclose(a, b)


def test_input_type_aliases_and_errors() -> None:
    assert VoyageEmbedder(api_key="k", input_type="search_document").input_type == "document"
    assert VoyageEmbedder(api_key="k", input_type=None).input_type is None
    with pytest.raises(SettingsError, match="not a Voyage input type"):
        VoyageEmbedder(api_key="k", input_type="clustering")


def test_settings_default_input_type_is_query() -> None:
    s = Settings(embedder_type="voyage", embedder_api_key="k")
    assert VoyageEmbedder.from_settings(s).input_type == "query"
    s = s.replace(embedder_input_type="document", embedder_base_url="https://ai.example.com/v1")
    e = VoyageEmbedder.from_settings(s)
    assert e.input_type == "document" and e.base_url == "https://ai.example.com"


async def test_output_dimension(voyage: FakeServer) -> None:
    async with make(voyage, dimensions=2048) as e:
        assert (await e.embed(["one"])).shape == (1, 2048)
    assert voyage.state.requests[0]["output_dimension"] == 2048
    with pytest.raises(SettingsError, match="expected 256, 512, 1024, 2048"):
        VoyageEmbedder(api_key="k", dimensions=768)
    with pytest.raises(SettingsError, match="voyage-3-lite always returns 512"):
        VoyageEmbedder("voyage-3-lite", api_key="k", dimensions=256)
