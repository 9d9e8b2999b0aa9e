"""Plain data carried between the engine and its stores."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Entry", "Hit", "Matrix", "Vector", "VectorMatch", "decode_entry", "encode_entry"]

Vector = npt.NDArray[np.float32]
"""One embedding, 1-D float32, L2-normalised by the engine."""

Matrix = npt.NDArray[np.float32]
"""A batch of embeddings, 2-D float32, one row per input text."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A cached answer found for a query."""

    payload: bytes
    metadata: dict[str, Any]
    similarity: float
    entry_id: str
    source: Literal["exact", "semantic"]


@dataclass(frozen=True, slots=True)
class VectorMatch:
    """One vector-search result: the entry and its cosine similarity to the query."""

    entry_id: str
    similarity: float


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored answer, as the response store keeps it.

    ``partition`` is the hashed partition key; ``query`` the normalised question text
    (kept for verification and the exact-match index); ``expires_at`` a Unix time, or
    ``None`` for no expiry.
    """

    entry_id: str
    partition: str
    query: str
    payload: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float | None = None
    context: str | None = None


def encode_entry(entry: Entry) -> bytes:
    """Serialise an entry: one JSON header line, then the raw payload bytes."""
    header = {
        "id": entry.entry_id,
        "p": entry.partition,
        "q": entry.query,
        "m": entry.metadata,
        "c": entry.created_at,
        "e": entry.expires_at,
        "x": entry.context,
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + entry.payload


def decode_entry(blob: bytes) -> Entry:
    """Inverse of :func:`encode_entry`."""
    head, _, payload = blob.partition(b"\n")
    h = json.loads(head)
    return Entry(
        entry_id=h["id"],
        partition=h["p"],
        query=h["q"],
        payload=payload,
        metadata=h["m"],
        created_at=h["c"],
        expires_at=h["e"],
        context=h.get("x"),
    )
