"""A huge text is cut to a character bound before tiktoken or the API sees it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from semcache import EmbeddingAPIError
from semcache_embed_http import CHARS_PER_TOKEN, DEFAULT_MAX_INPUT_TOKENS
from semcache_embed_openai import OpenAIEmbedder

from .fake_openai import FakeOpenAI
from .test_openai_embedder import byte_encoding

MIB = 1 << 20


def _huge() -> str:
    return ("a question about the cache, " * (MIB // 28 + 1))[:MIB]


class Recording:
    """A tiktoken encoding that records how long each text it tokenises is."""

    def __init__(self) -> None:
        self.inner = byte_encoding()
        self.lengths: list[int] = []

    def encode_ordinary(self, text: str) -> list[int]:
        self.lengths.append(len(text))
        return self.inner.encode_ordinary(text)

    def decode_bytes(self, tokens: list[int]) -> bytes:
        return self.inner.decode_bytes(tokens)


async def test_tiktoken_never_tokenises_more_than_the_bound(fake: FakeOpenAI):
    encoding = Recording()
    e = OpenAIEmbedder("text-embedding-3-small", api_key="k", base_url=fake.url, encoding=encoding)
    try:
        await e.embed([_huge()])
        assert encoding.lengths == [8191 * CHARS_PER_TOKEN]
        assert fake.requests[-1].body["input"] == [_huge()[:8191]]
    finally:
        await e.aclose()


async def test_offline_the_byte_cut_still_bounds_the_body(fake: FakeOpenAI):
    e = OpenAIEmbedder(
        "text-embedding-3-small", api_key="k", base_url=fake.url, encoding="no-such-encoding"
    )
    try:
        await e.embed([_huge()])
        assert len(json.dumps(fake.requests[-1].body)) < 16 * 1024
    finally:
        await e.aclose()


async def test_a_model_without_a_known_limit_gets_the_default_bound(fake: FakeOpenAI):
    e = OpenAIEmbedder("any-local-model", api_key="k", base_url=fake.url, max_retries=0)
    try:
        assert e.max_input_chars == DEFAULT_MAX_INPUT_TOKENS * CHARS_PER_TOKEN
        with pytest.raises(EmbeddingAPIError):  # the fake refuses past 8191 bytes
            await e.embed([_huge()])
        body: dict[str, Any] = fake.requests[-1].body
        assert body["input"] == [_huge()[: e.max_input_chars]]
        assert len(json.dumps(body)) < 80 * 1024
    finally:
        await e.aclose()
