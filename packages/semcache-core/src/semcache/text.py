"""Query normalisation and the hashes that make exact keys and partitions."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

__all__ = ["hash_text", "normalize_query", "partition_key"]

_SPACE = re.compile(r"\s+")
_TRAILING_PUNCT = re.compile(r"[\s?!.。？！]+$")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def normalize_query(text: str) -> str:
    """Canonical form used for the exact-match key and the embedding.

    Unicode NFKC, case-folded, whitespace collapsed, trailing ``?!.`` dropped: a repeat
    that differs only in those is an exact hit. Nothing that changes meaning is touched.
    Text that is not valid Unicode (a lone surrogate, e.g. from a JSON ``\\ud800``
    escape) normalises to ``""``: such a question is never cached, and never reaches the
    model, whose tokenizer would fail on it and trip the breaker for everyone.
    """
    if _LONE_SURROGATE.search(text):
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text).strip()
    return _TRAILING_PUNCT.sub("", text)


def hash_text(text: str) -> str:
    """Short stable hash (128-bit BLAKE2b, hex) of a string."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def partition_key(*parts: Any) -> str:
    """Exact hash of everything that must match for a hit (JSON-encoded, key order fixed)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hash_text(blob)
