import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
TRAPS = DATA / "traps.jsonl"
HELDOUT = DATA / "heldout.jsonl"
TINY = DATA / "tiny_pairs.jsonl"


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[Any]:
    """all-MiniLM-L6-v2 through the huggingface plugin, loaded once per session."""
    hf = pytest.importorskip("semcache_embed_hf", reason="semcache-embed-hf is not installed")
    try:
        embedder = hf.HuggingFaceEmbedder(threads=2)
    except Exception as exc:  # no weights package and no network
        pytest.skip(f"all-MiniLM-L6-v2 is not available: {exc}")
    yield embedder
    asyncio.run(embedder.aclose())
