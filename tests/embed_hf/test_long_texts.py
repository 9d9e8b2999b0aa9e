"""A huge text costs about what a short one does: it is cut before it is tokenised."""

from __future__ import annotations

import time

import numpy as np
import pytest

from semcache_embed_hf import CHARS_PER_TOKEN, HuggingFaceEmbedder

_WORDS = (
    "The cache compares the meaning of a question with the questions it has already "
    "answered, and returns the stored answer when a close one is found; otherwise the "
    "request goes to the upstream service, and its answer is kept for the next caller. "
)


def _prose(chars: int) -> str:
    return (_WORDS * (chars // len(_WORDS) + 1))[:chars]


def _best_of(embedder: HuggingFaceEmbedder, text: str, runs: int = 3) -> float:
    import asyncio

    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        asyncio.run(embedder.embed([text]))
        best = min(best, time.perf_counter() - started)
    return best


@pytest.fixture(params=["torch", "onnx", "onnx-int8"])
def backend(request: pytest.FixtureRequest) -> HuggingFaceEmbedder:
    name = {"torch": "hf_torch", "onnx": "hf_onnx", "onnx-int8": "hf_int8"}[request.param]
    embedder: HuggingFaceEmbedder = request.getfixturevalue(name)
    return embedder


def test_the_bound_comes_from_the_model_window(backend: HuggingFaceEmbedder):
    assert backend.max_tokens == 256  # all-MiniLM-L6-v2's max_seq_length
    assert backend.max_input_chars == 256 * CHARS_PER_TOKEN


def test_a_huge_text_costs_about_what_a_short_one_does(backend: HuggingFaceEmbedder):
    huge = _prose(1 << 20)
    short = _prose(2048)
    _best_of(backend, huge, runs=1)  # warm both shapes
    assert _best_of(backend, huge) < 5 * _best_of(backend, short)


async def test_the_vector_is_the_vector_of_the_cut_text(backend: HuggingFaceEmbedder):
    huge = _prose(1 << 20)
    cut = huge[: backend.max_input_chars]
    full, head = await backend.embed([huge, cut])
    assert np.allclose(full, head, atol=1e-6)


async def test_the_cut_keeps_all_the_model_reads(hf_torch: HuggingFaceEmbedder):
    # The tokenised cut still fills the window, so the cut changes no vector: the
    # model's own truncation of the whole text gives the same embedding.
    model = hf_torch._run.model  # type: ignore[attr-defined]
    for text in (_prose(1 << 20), "naïve café résumé 日本語のテキスト " * 40_000):
        cut = text[: hf_torch.max_input_chars]
        tokens = model.tokenizer(cut, truncation=False)["input_ids"]
        assert len(tokens) > hf_torch.max_tokens
        whole = model.encode([text], normalize_embeddings=True)
        ours = await hf_torch.embed([text])
        assert np.allclose(whole, ours, atol=1e-5)
