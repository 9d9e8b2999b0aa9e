"""Query normalisation and the hashes that make exact keys and partitions."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

__all__ = ["MAX_SEMANTIC_CHARS", "hash_text", "normalize_query", "partition_key"]

MAX_SEMANTIC_CHARS = 4000
"""Longer questions are cached exact-only: matched byte for byte (after stripping the
ends), never normalised further, embedded or analysed, so what one request costs the
process stays bounded whatever its size."""

_SPACE = re.compile(r"\s+")
_TRAILING = " ?!.。？！"  # after whitespace is collapsed, the only space left is " "


def normalize_query(text: str) -> str:
    """Canonical form used for the exact-match key and the embedding.

    Unicode NFKC, case-folded, whitespace collapsed, trailing ``?!.`` dropped: a repeat
    that differs only in those is an exact hit. Nothing that changes meaning is touched.
    A text longer than :data:`MAX_SEMANTIC_CHARS` only loses the whitespace at its
    ends. Text that is not valid Unicode (a lone surrogate, e.g. from a JSON ``\\ud800``
    escape) normalises to ``""``: such a question is never cached, and never reaches the
    model, whose tokenizer would fail on it and trip the breaker for everyone.
    """
    if _has_lone_surrogate(text):
        return ""
    if len(text) > MAX_SEMANTIC_CHARS:
        return text.strip()  # exact-only: see MAX_SEMANTIC_CHARS
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text).strip()
    # str.rstrip, not a regex anchored at the end: that one backtracks quadratically
    # over a long run of "?" or ". " that is not at the end.
    return text.rstrip(_TRAILING)


def _has_lone_surrogate(text: str) -> bool:
    # The codec finds one in C at memory speed; a regex search is ten times slower.
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def hash_text(text: str) -> str:
    """Short stable hash (128-bit BLAKE2b, hex) of a string."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def partition_key(*parts: Any) -> str:
    """Exact hash of everything that must match for a hit (JSON-encoded, key order fixed)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hash_text(blob)
