"""Verification after the vector search: reject near-identical text with another meaning.

:class:`DefaultVerifier` is rule-based and needs no model. Any object with
``async verify(query, candidate, similarity) -> bool`` can replace it (see
:class:`semcache.protocols.Verifier`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from semcache.verify.analysis import Analysis, analyze, stem
from semcache.verify.shared import split_shared

__all__ = ["DefaultVerifier", "Shape", "Verdict", "analyze", "opposed", "stem"]

_INLINE_CHARS = 400
"""Pairs of questions up to this size are checked on the event loop (~0.1 ms)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """A pair as the check sees it before the similarity: ``rule`` rejects at any
    similarity (negation, number, ...); otherwise the topic rule weighs ``edits`` (the
    differing topic words) and ``other_question`` (another kind of answer asked for)."""

    rule: str | None
    edits: float = 0.0
    other_question: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of one check: ``rule`` names what rejected the candidate (``None``: served)."""

    rule: str | None
    edits: float = 0.0
    """Differing topic words (weighted details included) the topic rule saw."""

    @property
    def accepted(self) -> bool:
        return self.rule is None


class DefaultVerifier:
    """Rule-based second opinion on a vector-search candidate; microseconds per call.

    Hard rules, at any similarity: the two texts must not *swap* a number, a date or
    time, a unit, an identifier (``node.js``, ``#4821``, ``--force``), quoted text or a
    capitalised name (when the texts keep their case); must negate the same things;
    must not take opposite sides of a scale (enable/disable, before/after, more/less,
    ``un-``/``dis-`` forms); and must not reverse a direction ("USD to EUR").

    Topic rule: when the texts differ by a word or two ("cook rice" vs "cook rice in a
    microwave", "capital of Austria" vs "... Australia"), that word is usually what the
    question is about, and embeddings barely notice it: such a pair needs ``top``
    similarity. Each further differing word lowers the bar by ``step`` (a broad rewording
    that still embeds close is a paraphrase), never below ``threshold + margin`` (the
    cache's threshold, which the cache tells the verifier through
    :meth:`use_threshold`; all-MiniLM-L6-v2's 0.85 until then). A number,
    date or name on one side only counts as ``detail_weight`` words. Asking for another
    kind of answer (why vs how, yes-no vs how, who vs when) adds ``question_gap``; with
    no differing words at all it needs ``top + question_gap``.

    Long texts that share most of their text (a document followed by two different
    instructions) are compared on the parts that differ: the shared part dominates both
    embeddings, so their similarity says nothing about those parts, and any topic word
    on one side only is then a different request ("instruction").

    The similarity levels are measured for all-MiniLM-L6-v2 (cosine); for a model whose
    similarities run lower or higher, shift ``top`` with the threshold.
    """

    def __init__(
        self,
        *,
        top: float = 0.92,
        step: float = 0.025,
        question_gap: float = 0.02,
        detail_weight: float = 1.0,
        topic_rule: bool = True,
        threshold: float = 0.85,
        margin: float = 0.01,
    ) -> None:
        self.threshold = threshold
        self.margin = margin
        self.top = top
        self.step = step
        self.question_gap = question_gap
        self.detail_weight = detail_weight
        self.topic_rule = topic_rule

    def use_threshold(self, threshold: float) -> None:
        """The cache's similarity threshold: the topic rule's bar stays ``margin`` above it."""
        self.threshold = threshold

    async def verify(self, query: str, candidate: str, similarity: float) -> bool:
        return (await self.verdict(query, candidate, similarity)).accepted

    async def verdict(self, query: str, candidate: str, similarity: float) -> Verdict:
        """:meth:`verify` with the rule that rejected (the cache reports it in traces
        and the access log)."""
        if len(query) + len(candidate) > _INLINE_CHARS:
            # Long texts (conversation contexts) can take milliseconds: not on the loop.
            return await asyncio.to_thread(self.check, query, candidate, similarity)
        return self.check(query, candidate, similarity)

    def check(self, query: str, candidate: str, similarity: float) -> Verdict:
        """The verdict with the rule that fired: for tests, tuning and debugging."""
        shape = self.shape(query, candidate)
        if shape.rule is not None:
            return Verdict(shape.rule, shape.edits)
        if not self.topic_rule:
            return Verdict(None)
        needed = self.needed(shape.edits, shape.other_question)
        if similarity < needed:
            kind = "question" if shape.other_question and shape.edits == 0 else "topic"
            return Verdict(kind, shape.edits)
        return Verdict(None, shape.edits)

    def shape(self, query: str, candidate: str) -> Shape:
        """What the check sees in a pair before the similarity is known: a rule that
        rejects at any similarity, else the differing words and question kinds the
        topic rule weighs. :mod:`semcache.verify.levels` fits the levels on these."""
        if query == candidate:
            return Shape(None)
        differing = split_shared(query, candidate)
        if differing is not None:
            query, candidate = differing.a, differing.b
        a, b = analyze(query), analyze(candidate)
        details = 0
        numbers_differ = False
        for rule, only_a, only_b in _details(a, b):
            if only_a and only_b:
                return Shape(rule)
            if rule == "unit" and numbers_differ:
                continue  # "$500" on one side is one detail, not a number and a unit
            numbers_differ = numbers_differ or (rule == "number" and bool(only_a or only_b))
            details += len(only_a) + len(only_b)
        hard = _hard_rules(a, b)
        if hard is not None:
            return Shape(hard)
        # A swapped word is one edit, like an added one: max, not sum.
        edits = max(len(unmatched(a, b)), len(unmatched(b, a))) + self.detail_weight * details
        other_question = (
            a.question is not None and b.question is not None and a.question != b.question
        )
        if (
            self.topic_rule
            and differing is not None
            and differing.dominated
            and (edits > 0 or other_question)
        ):
            return Shape("instruction", edits)
        return Shape(None, edits, other_question)

    def needed(self, edits: float, other_question: bool = False) -> float:
        """Similarity a candidate needs, given its differing words and question kind."""
        gap = self.question_gap if other_question else 0.0
        if edits <= 0:
            return self.top + gap if other_question else 0.0
        floor = self.threshold + self.margin
        return max(self.top - self.step * (edits - 1), floor) + gap


def opposed(a: str, b: str) -> str | None:
    """The rule by which two texts say opposite things (``negation``, ``polarity``,
    ``direction``), or ``None``; details (numbers, names...) are not compared."""
    return _hard_rules(analyze(a), analyze(b))


def unmatched(a: Analysis, b: Analysis) -> list[str]:
    """Topic words of ``a`` that ``b`` does not mention in any form."""
    return [w for w in a.content if w not in b.vocab]


def _details(a: Analysis, b: Analysis) -> list[tuple[str, set[str], set[str]]]:
    """Per kind of detail: what only ``a`` has, what only ``b`` has."""
    out = [
        ("number", set(a.numbers - b.numbers), set(b.numbers - a.numbers)),
        ("date", set(a.temporal - b.temporal), set(b.temporal - a.temporal)),
        ("unit", set(a.units - b.units), set(b.units - a.units)),
        ("identifier", _unmatched_names(a.identifiers, b), _unmatched_names(b.identifiers, a)),
        ("quoted", _unmatched_quotes(a, b), _unmatched_quotes(b, a)),
    ]
    if a.entities is not None and b.entities is not None:
        out.append(("entity", _unmatched_names(a.entities, b), _unmatched_names(b.entities, a)))
    return out


def _unmatched_names(names: frozenset[str], other: Analysis) -> set[str]:
    return {n for n in names if n not in other.vocab and stem(n) not in other.vocab}


def _unmatched_quotes(a: Analysis, b: Analysis) -> set[str]:
    # A quoted phrase is matched when the other text says the same words, quoted or not.
    return {" ".join(q) for q in a.quoted if not all(w in b.vocab for w in q)}


def _hard_rules(a: Analysis, b: Analysis) -> str | None:
    if _negation_differs(a, b) or _negation_differs(b, a):
        return "negation"
    if _opposite_poles(a, b):
        return "polarity"
    if _prefix_antonym(a, b) or _prefix_antonym(b, a):
        return "polarity"
    if _reversed(a, b) or _roles_swapped(a, b) or _roles_swapped(b, a):
        return "direction"
    if _particle_swapped(a, b):
        return "polarity"
    return None


_PARTICLE_POLES = {"in": 0, "into": 0, "out": 1, "on": 2, "onto": 2, "off": 3, "up": 4, "down": 5}
"""Particles whose swap after the same word reverses it: "log in" / "log out", "turn on" /
"turn off", "move money into" / "out of" an account, "scale up" / "scale down"."""


_SELF = frozenset({"me", "myself"})
"""The first person as the one something goes to, comes from or is for ("us" is left out:
normalised text cannot tell it from "US")."""

_ROLE_MARKERS = frozenset({"to", "from", "for"})

_DETERMINERS = frozenset({"a", "an", "the", "my", "our", "your", "his", "her", "their", "this"})


def _roles_swapped(a: Analysis, b: Analysis) -> bool:
    """``a`` sends something to a party that ``b`` names first and has it sent to me: "I
    send a parcel to my sister" / "my sister sends a parcel to me"; "what should I say to
    my boss" / "what should my boss say to me". Only the first person is read: other
    subjects and objects cannot be told apart without a parser."""
    ta, tb = a.tokens, b.tokens
    for i in range(len(tb) - 1):
        marker = tb[i]
        if marker not in _ROLE_MARKERS or tb[i + 1] not in _SELF:
            continue
        if any(ta[k] == marker and ta[k + 1] in _SELF for k in range(len(ta) - 1)):
            continue  # both say "to me"
        named_before = {stem(w) for w in tb[:i]}
        their_parties = {_party_after(tb, j) for j in range(len(tb)) if tb[j] == marker}
        for k in range(len(ta)):
            party = _party_after(ta, k) if ta[k] == marker else None
            if party and stem(party) in named_before and party not in their_parties:
                return True
    return False


def _party_after(tokens: tuple[str, ...], i: int) -> str | None:
    """The word a marker points at, past an article or possessive: "to my sister"."""
    for word in tokens[i + 1 : i + 3]:
        if word not in _DETERMINERS:
            return word if word.isalpha() and word not in _SELF else None
    return None


def _particle_swapped(a: Analysis, b: Analysis) -> bool:
    """The same word followed by opposite particles, each side saying only its own."""
    ours, theirs = _particles(a), _particles(b)
    return any(
        (word, pole ^ 1) in theirs and (word, pole) not in theirs and (word, pole ^ 1) not in ours
        for word, pole in ours
    )


def _particles(a: Analysis) -> frozenset[tuple[str, int]]:
    t = a.tokens
    return frozenset(
        (stem(t[i - 1]), _PARTICLE_POLES[t[i]]) for i in range(1, len(t)) if t[i] in _PARTICLE_POLES
    )


def _negation_differs(a: Analysis, b: Analysis) -> bool:
    # "cancel" vs "don't cancel": a negates something b says without negating it. A
    # negation pairs with one in b that touches the same words; a negation over words b
    # never mentions is a clause b lacks, left to the topic rule.
    remaining = list(b.negated)
    for scope in a.negated:
        match = next((s for s in remaining if s & scope or (not s and not scope)), None)
        if match is not None:
            remaining.remove(match)
        elif any(w in b.vocab for w in scope):
            return True
    return False


def _opposite_poles(a: Analysis, b: Analysis) -> bool:
    # Only a clean swap counts: "advantages and disadvantages" vs "disadvantages" does not.
    for axis, poles in a.poles.items():
        other = b.poles.get(axis)
        if other is not None and len(poles) == 1 and len(other) == 1 and poles != other:
            return True
    return False


def _prefix_antonym(a: Analysis, b: Analysis) -> bool:
    """``a`` says un-X / dis-X / in-X where ``b`` says X (and never the prefixed form)."""
    for word, base, base_stem in a.prefixed:
        if word in b.vocab:  # "nonlinear" vs "non linear"
            continue
        if base in b.words or base_stem in b.vocab:
            return True
    return False


def _reversed(a: Analysis, b: Analysis) -> bool:
    # "usd to eur" vs "eur to usd": the same two words on opposite sides of one marker.
    for marker, left, right in a.relations:
        for marker_b, left_b, right_b in b.relations:
            if marker != marker_b:
                continue
            for x in left & right_b:
                for y in right & left_b:
                    if x != y and x not in left_b and y not in right_b:
                        return True
    return False
