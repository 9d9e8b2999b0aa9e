"""Which stored conversations to compare when one follow-up was asked after many.

In the ``semantic`` and ``turns`` context modes every conversation of a partition shares
one vector index, and a common follow-up ("is there a fee?", "can you do that for me?")
is stored after hundreds of them, all at the same question similarity. The vector search
alone would hand back an arbitrary few of those, most likely not the conversation the
request continues. So the search fetches more candidates (:data:`CROWD_FACTOR` times the
usual number) and compares the usual number of closest questions plus as many again of
the rest, those whose earlier turns share the most words with the request's
(:func:`closest_contexts`): a comparison costs model calls in turns mode, a word count
costs microseconds.

Choosing which candidates to compare never serves anything by itself: each one still
passes every check of the context mode and of the verifier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from semcache.types import Entry, VectorMatch

__all__ = ["CROWD_FACTOR", "CROWD_MAX", "closest_contexts"]

CROWD_FACTOR = 8
"""Candidates fetched per candidate the vector search alone would give, for a request
with earlier turns."""

CROWD_MAX = 100
"""At most this many candidates fetched (the vector stores' tested bound)."""

_WORD = re.compile(r"\w+")

_SAMPLE_CHARS = 2000
"""Words are read from this much of each end of a conversation: choosing among a hundred
long ones must not hold the event loop (a hundred 40-turn conversations read whole take
hundreds of milliseconds)."""

_SAME_TEXT = 2.0
"""The affinity of a conversation word for word the request's (shares are 0 to 1)."""

_NO_CONTEXT = -1.0
"""The affinity of a first question: never the answer to a follow-up."""

Candidate = tuple[VectorMatch, Entry]


def closest_contexts(context: str, candidates: Sequence[Candidate], keep: int) -> list[Candidate]:
    """The first ``keep`` candidates (the closest questions), and up to ``keep`` more of
    the rest whose earlier turns are closest to ``context`` (the same text first, then by
    the share of words in common); in the order of the vector search (best question
    similarity first). The closest questions always stay, so that conversations which
    share many words with the request's cannot push the right one out."""
    if len(candidates) <= 2 * keep:
        return list(candidates)
    words = _words(context)

    def affinity(index: int) -> tuple[float, float]:
        match, entry = candidates[index]
        stored = entry.context
        if stored is None:
            return (_NO_CONTEXT, match.similarity)
        if stored == context:
            return (_SAME_TEXT, match.similarity)
        theirs = _words(stored)
        union = len(words | theirs)
        return ((len(words & theirs) / union) if union else 0.0, match.similarity)

    rest = sorted(range(keep, len(candidates)), key=affinity, reverse=True)[:keep]
    return [candidates[i] for i in [*range(keep), *sorted(rest)]]


def _words(text: str) -> frozenset[str]:
    if len(text) > 2 * _SAMPLE_CHARS:
        text = text[:_SAMPLE_CHARS] + "\n" + text[-_SAMPLE_CHARS:]
    return frozenset(_WORD.findall(text.lower()))
