"""Verification after the vector search: reject near-identical text with another meaning."""

from __future__ import annotations

import re

__all__ = ["DefaultVerifier"]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = frozenset(
    {"not", "no", "never", "without", "don't", "dont", "doesn't", "isn't", "can't"}
)


class DefaultVerifier:
    """Rule-based check that needs no model: numbers and negation must agree."""

    async def verify(self, query: str, candidate: str, similarity: float) -> bool:
        if set(_NUMBER.findall(query)) != set(_NUMBER.findall(candidate)):
            return False
        return bool(_negations(query) == _negations(candidate))


def _negations(text: str) -> set[str]:
    return {w for w in re.findall(r"[\w']+", text) if w in _NEGATION}
