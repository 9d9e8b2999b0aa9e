"""Query normalisation and the hashes that make exact keys and partitions."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

__all__ = [
    "MAX_SEMANTIC_CHARS",
    "exact_text",
    "fold_layout",
    "hash_text",
    "normalize_query",
    "partition_key",
]

MAX_SEMANTIC_CHARS = 4000
"""Longer questions are cached exact-only: matched byte for byte (after stripping the
ends), never normalised further, embedded or analysed, so what one request costs the
process stays bounded whatever its size."""

_SPACE = re.compile(r"\s+")
_INLINE_SPACE = re.compile(r"[ \t]+")
_TRAILING = " ?!.。？！"  # after whitespace is collapsed, the only space left is " "


def exact_text(text: str) -> str:
    """The exact-match key of a question: the text as sent, trivially tidied.

    Only the whitespace at its ends is stripped and ``\r\n`` becomes ``\n``: nothing
    inside changes, so ``x²`` and ``x2``, or code indented differently, are different
    keys. Text that is not valid Unicode gives ``""`` (never cached), as in
    :func:`normalize_query`.
    """
    if _has_lone_surrogate(text):
        return ""
    return text.replace("\r\n", "\n").strip()


def fold_layout(text: str) -> str:
    """``text`` with only the differences that never change an answer folded away.

    Case-folded, spaces and tabs inside a line collapsed, trailing whitespace of each
    line and ``?!.`` at the end dropped; unlike :func:`normalize_query`, no NFKC and the
    line breaks and each line's indentation kept. Two questions whose
    :func:`normalize_query` forms are equal but whose folded forms differ differ in
    something the model cannot see (``x²``/``x2``, indentation): not the same question.
    """
    lines = [_indent_and_rest(line) for line in exact_text(text).casefold().split("\n")]
    return "\n".join(lines).rstrip(_TRAILING)


def _indent_and_rest(line: str) -> str:
    body = line.lstrip(" \t")
    return line[: len(line) - len(body)] + _INLINE_SPACE.sub(" ", body).rstrip()


def normalize_query(text: str) -> str:
    """Canonical form used for the embedding and the verifier.

    Unicode NFKC, case-folded, whitespace collapsed, trailing ``?!.`` dropped. The
    exact-match key is :func:`exact_text` instead: a repeat that differs only in these
    is a semantic hit (similarity 1), where the layout allows (:func:`fold_layout`).
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
