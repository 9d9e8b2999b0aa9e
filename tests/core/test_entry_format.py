"""The stored entry format: the context embedding has a field of its own, not user metadata."""

from __future__ import annotations

import json

import numpy as np

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache.types import Entry, decode_entry, encode_entry, encode_vector


def unit(values: list[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_context_vector_round_trips_outside_the_metadata():
    vector = unit([1.0, 2.0, 3.0, 4.0])
    entry = Entry("id", "p", "q", b"payload", {"status": 200}, 1.0, None, "earlier", vector)
    blob = encode_entry(entry)
    header = json.loads(blob.partition(b"\n")[0])
    assert header["m"] == {"status": 200}
    back = decode_entry(blob)
    assert back.metadata == {"status": 200} and back.context == "earlier"
    assert back.context_vector is not None
    assert float(back.context_vector @ vector) > 0.999


def test_entries_written_with_the_vector_in_the_metadata_still_read():
    vector = unit([0.5, -1.0, 2.0])
    header = {
        "id": "id",
        "p": "p",
        "q": "q",
        "m": {"status": 200, "semcache.context_vector": encode_vector(vector)},
        "c": 1.0,
        "e": None,
        "x": "earlier",
    }
    entry = decode_entry(json.dumps(header).encode() + b"\npayload")
    assert entry.metadata == {"status": 200}
    assert entry.context_vector is not None and float(entry.context_vector @ vector) > 0.999


async def test_semantic_context_survives_a_restart(tmp_path):
    settings = Settings.from_env(
        {}, context_mode="semantic", threshold=0.7, data_path=str(tmp_path), batch_max_size=1
    )
    question, context = "what is its population", "user: tell me about Paris, France"
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None) as cache:
        await cache.store(question, b"67 million", context=context, metadata={"k": "v"})
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None) as cache:
        # A reworded context needs the stored context's embedding to match.
        hit = await cache.lookup(question, context="user: tell me about Paris in France")
    assert hit is not None and hit.payload == b"67 million"
    assert hit.metadata == {"k": "v"}
