"""A huge text is cut to a bound from the model's input limit before it is sent."""

from __future__ import annotations

import pytest

from semcache_embed_cohere import CohereEmbedder
from semcache_embed_http import (
    CHARS_PER_TOKEN,
    DEFAULT_MAX_INPUT_TOKENS,
    HTTPEmbedder,
    cut_texts,
)
from semcache_embed_ollama import OllamaEmbedder
from semcache_embed_voyage import VoyageEmbedder
from tests.embed_providers.conftest import Provider

MIB = 1 << 20


def _huge() -> str:
    return ("a question about the cache, " * (MIB // 28 + 1))[:MIB]


async def test_a_huge_text_sends_a_bounded_body(provider: Provider):
    e = provider.make()
    await e.embed([_huge(), "short"])
    state = provider.server.state
    assert len(state.body_sizes) == 1
    assert state.body_sizes[0] < 80 * 1024  # not the 1 MiB that was given
    sent = state.requests[0][provider.texts_key]
    assert len(sent[0]) == e.max_input_chars and _huge().startswith(sent[0])
    assert sent[1] == "short"


@pytest.mark.parametrize(
    ("make", "model", "tokens"),
    [
        (OllamaEmbedder, "nomic-embed-text", 8192),
        (OllamaEmbedder, "all-minilm:33m", 512),
        (OllamaEmbedder, "some-new-model", DEFAULT_MAX_INPUT_TOKENS),
        (CohereEmbedder, "embed-english-v3.0", 512),
        (CohereEmbedder, "embed-v4.0", DEFAULT_MAX_INPUT_TOKENS),  # 128K: capped
        (VoyageEmbedder, "voyage-3.5", DEFAULT_MAX_INPUT_TOKENS),  # 32K: capped
        (VoyageEmbedder, "voyage-2", 4000),
    ],
)
def test_the_bound_follows_the_model(make: type[HTTPEmbedder], model: str, tokens: int):
    e = make(model, api_key="k", base_url="http://127.0.0.1:9")  # type: ignore[call-arg]
    assert e.max_input_tokens == tokens
    assert e.max_input_chars == tokens * CHARS_PER_TOKEN


async def test_an_explicit_limit_wins(provider: Provider):
    e = provider.make(max_input_tokens=100)
    await e.embed([_huge()])
    assert len(provider.server.state.requests[0][provider.texts_key][0]) == 100 * CHARS_PER_TOKEN
    assert provider.server.state.body_sizes[0] < 2048


async def test_texts_within_the_bound_are_sent_whole(provider: Provider):
    e = provider.make()
    text = "x" * e.max_input_chars
    await e.embed([text])
    assert provider.server.state.requests[0][provider.texts_key][0] == text


def test_cut_texts_keeps_short_texts_and_order():
    texts = ["ab", "abcdef", "", "abc"]
    assert cut_texts(texts, 3) == ["ab", "abc", "", "abc"]
