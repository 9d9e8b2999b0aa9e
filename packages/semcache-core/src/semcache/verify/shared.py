"""Two long texts that share most of their words: where do they differ?

A long shared part (a document, a contract, earlier turns) dominates both embeddings,
so their similarity says nothing about the short parts that differ, and the text
analysis, bounded to its first :data:`~semcache.verify.analysis.MAX_ANALYSED_CHARS`,
may never reach them. :func:`split_shared` cuts the shared start and end away, keeping a
little of each around the differing parts, so those are what gets compared.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIN_SHARED_CHARS", "Differing", "split_shared"]

MIN_SHARED_CHARS = 200
"""A shared start and end shorter than this together is left to the usual rules."""

_DOMINANCE = 2
"""The shared part dominates when it is this many times longer than either differing part."""

_KEPT = 80
"""Characters of the shared part kept on each side of the differing parts (clause context)."""


@dataclass(frozen=True, slots=True)
class Differing:
    """The differing parts of two texts, each with a little shared text around it."""

    a: str
    b: str
    dominated: bool
    """The shared part is most of the text: the similarity reflects it, not the difference."""


def split_shared(
    a: str, b: str, min_shared: int = MIN_SHARED_CHARS, kept: int = _KEPT
) -> Differing | None:
    """The parts of ``a`` and ``b`` that differ, with up to ``kept`` characters of the
    shared text around them, or ``None`` when the shared start and end are shorter than
    ``min_shared`` characters together."""
    if a == b:
        return None
    limit = min(len(a), len(b))
    start = 0
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    if start + end < min_shared:
        return None
    start, end = _word_start(a, start), _word_end(a, end)
    middle = max(len(a) - start - end, len(b) - start - end)
    lo = _word_start(a, max(0, start - kept))
    hi_a = len(a) - _word_end(a, max(0, end - kept))
    hi_b = len(b) - _word_end(b, max(0, end - kept))
    return Differing(a[lo:hi_a], b[lo:hi_b], dominated=start + end >= _DOMINANCE * middle)


def _word_start(text: str, i: int) -> int:
    """``i`` moved back to the start of the word it falls in."""
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return i


def _word_end(text: str, n: int) -> int:
    """``n`` characters from the end, cut back to the end of a whole word."""
    while n > 0 and not text[len(text) - n].isspace():
        n -= 1
    return n
