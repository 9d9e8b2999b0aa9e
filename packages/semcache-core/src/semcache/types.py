"""Plain data carried between the engine and its stores."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Entry",
    "Hit",
    "Matrix",
    "Vector",
    "VectorMatch",
    "answer_version",
    "decode_entry",
    "decode_vector",
    "encode_entry",
    "encode_vector",
]

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
    verdict: str | None = None
    """What let a semantic hit through: ``verifier`` (the verifier accepted it),
    ``unverified`` (no verifier), ``same_text`` (equal once normalised),
    ``after_RULE`` (a closer candidate was turned down by RULE first), or ``judge`` (the
    grey-zone judge's yes served what the rules or the threshold turned away). The
    audit's false-hit rate is kept per verdict."""
    version: str | None = field(default=None, compare=False)
    """Which answer of the entry was served (:attr:`Entry.version`): the entry may be
    stored again with a new answer under the same id, and what is learned about this
    one (an audit, a report) must not land on that one. ``None``: not known."""


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
    ``None`` for no expiry. ``metadata`` is the caller's, returned with a hit.
    ``context`` is the earlier conversation and ``context_vector`` its embedding, when
    the entry was stored in ``semantic`` context mode.
    """

    entry_id: str
    partition: str
    query: str
    payload: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float | None = None
    context: str | None = None
    context_vector: Vector | None = field(default=None, compare=False)

    @property
    def version(self) -> str:
        """Which answer this is: the same entry id stored again gets another version;
        what audits write into its metadata leaves it as it is."""
        return answer_version(self.created_at, self.payload)


def answer_version(created_at: float, payload: bytes) -> str:
    """A short token of one stored answer: when it was stored and what it says (two
    stores of one id within one clock tick still differ by their payload)."""
    digest = hashlib.blake2b(repr(float(created_at)).encode("ascii"), digest_size=8)
    digest.update(b"\x00")
    digest.update(payload)
    return digest.hexdigest()


_LEGACY_CONTEXT_VECTOR = "semcache.context_vector"  # where entries written by 0.1.0 kept it


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
    if entry.context_vector is not None:
        header["xv"] = encode_vector(entry.context_vector)
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + entry.payload


def decode_entry(blob: bytes) -> Entry:
    """Inverse of :func:`encode_entry`."""
    head, _, payload = blob.partition(b"\n")
    h = json.loads(head)
    metadata = h["m"]
    vector = h.get("xv")
    if vector is None and isinstance(metadata, dict) and _LEGACY_CONTEXT_VECTOR in metadata:
        metadata = dict(metadata)
        vector = metadata.pop(_LEGACY_CONTEXT_VECTOR)
    return Entry(
        entry_id=h["id"],
        partition=h["p"],
        query=h["q"],
        payload=payload,
        metadata=metadata,
        created_at=h["c"],
        expires_at=h["e"],
        context=h.get("x"),
        context_vector=decode_vector(vector),
    )


def encode_vector(vector: Vector) -> str:
    """A vector as compact JSON-safe text (float16, base64; cosine kept within ~1e-3)."""
    return base64.b64encode(np.asarray(vector, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(blob: object) -> Vector | None:
    """Inverse of :func:`encode_vector`, L2-normalised; ``None`` for anything unreadable."""
    if not isinstance(blob, str):
        return None
    try:
        raw = np.frombuffer(base64.b64decode(blob), dtype="<f2").astype(np.float32)
    except (ValueError, binascii.Error):
        return None
    norm = float(np.linalg.norm(raw)) if raw.size else 0.0
    return raw / norm if norm else None
