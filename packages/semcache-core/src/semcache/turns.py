"""Earlier conversation turns matched turn by turn (``context_mode="turns"``).

Two conversations lead to the same answer for the same follow-up when the turns that
matter say the same things, whatever the wording and whatever chatter surrounds them.
Embedding a whole conversation as one text cannot see that: chatter and rewording move
the vector as much as a changed order number, and a long chat is cut at the model's
window. So each turn is embedded on its own and paired with the closest turn of the same
role on the other side:

- **matched**: close enough and the verifier's rules find nothing that differs (the
  same number, date, name, negation...); rewording is fine;
- **conflict**: close, but a hard rule fires (order #1234 / #1243, "I did receive" /
  "I did not receive", a flight "delayed" / "cancelled" with the same words around it);
- **changed**: related (above ``related_at``) but not close enough: another intent, another
  product in a similar sentence;
- **unrelated**: nothing like it on the other side: chatter ("thanks!", "one sec"), or an
  exchange about something else.

The contexts match when no turn is in conflict or changed and each side has a matched
user turn (a conversation about something else entirely has no related turn at all).
Unrelated turns are left out.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from semcache.text import normalize_query
from semcache.types import Matrix
from semcache.verify import DefaultVerifier

__all__ = ["MAX_TURNS", "Turn", "TurnMatcher", "split_turns"]

MAX_TURNS = 40
"""Longer conversations match only their exact repeat, so a comparison costs a bounded
number of model inputs and similarity products."""

_ROLE_LINE = re.compile(r"^(system|developer|user|assistant|tool|function|model): ", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str
    """Normalised (case, spacing): what is embedded and analysed."""


def split_turns(context: str) -> list[Turn]:
    """The turns of a context rendered as ``role: text`` lines (see
    :func:`semcache.http.extract.extract`); a line without a role continues the turn
    before it. Empty turns are left out."""
    starts = list(_ROLE_LINE.finditer(context))
    if not starts:
        text = normalize_query(context)
        return [Turn("user", text)] if text else []
    turns = []
    head = normalize_query(context[: starts[0].start()])
    if head:
        turns.append(Turn("user", head))
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(context)
        text = normalize_query(context[match.end() : end])
        if text:
            turns.append(Turn(match.group(1), text))
    return turns


Embed = Callable[[list[str]], Awaitable[Matrix]]

_SOFT_RULES = frozenset({"topic", "question"})
"""The rules that weigh similarity; any other rule is a difference in what was said."""


class TurnMatcher:
    """Decides whether two contexts match turn by turn; keeps the vectors of recent turns
    (a stored conversation is compared again and again)."""

    def __init__(
        self,
        embed: Embed,
        *,
        match_at: float = 0.8,
        related_at: float = 0.5,
        rules: DefaultVerifier | None = None,
        remember: int = 4096,
    ) -> None:
        self._embed = embed
        self.match_at = match_at
        self.related_at = related_at
        # The turn's own bar: the rules' topic levels, never below match_at.
        self.rules = rules if rules is not None else DefaultVerifier(threshold=match_at, margin=0.0)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._remember = remember

    async def compare(self, context: str, stored: str) -> str | None:
        """``None`` when the contexts match, else why not: ``conflict``, ``changed``,
        ``unmatched`` (no user turn has a counterpart) or ``too-long``."""
        ours, theirs = split_turns(context), split_turns(stored)
        if len(ours) > MAX_TURNS or len(theirs) > MAX_TURNS:
            return "too-long"  # compared exactly only (equal texts matched before this)
        if not ours or not theirs:
            return None if not ours and not theirs else "unmatched"
        vectors = await self._vectors_for([t.text for t in ours + theirs])
        ours_v = np.stack([vectors[t.text] for t in ours])
        theirs_v = np.stack([vectors[t.text] for t in theirs])
        sims = ours_v @ theirs_v.T
        return self._refusal(ours, theirs, sims) or self._refusal(theirs, ours, sims.T)

    def _refusal(self, side: Sequence[Turn], other: Sequence[Turn], sims: np.ndarray) -> str | None:
        """Why ``side`` does not match ``other`` (each turn against the other side's turns
        of its role), or ``None``."""
        user_matched = False
        for i, turn in enumerate(side):
            candidates = [j for j, t in enumerate(other) if t.role == turn.role]
            if not candidates:
                continue  # a role the other side lacks (a tool result): unrelated
            j = max(candidates, key=lambda k: float(sims[i, k]))
            similarity = float(sims[i, j])
            if similarity < self.related_at:
                continue  # unrelated: chatter, or an exchange about something else
            verdict = self.rules.check(turn.text, other[j].text, similarity)
            if verdict.rule is not None and verdict.rule not in _SOFT_RULES:
                return "conflict"
            if verdict.rule is not None or similarity < self.match_at:
                return "changed"
            user_matched = user_matched or turn.role == "user"
        return None if user_matched else "unmatched"

    async def _vectors_for(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if todo:
            rows = np.asarray(await self._embed(todo), dtype=np.float32)
            for text, row in zip(todo, rows, strict=True):
                self._vectors[text] = row
        out = {}
        for text in texts:
            self._vectors.move_to_end(text)
            out[text] = self._vectors[text]
        while len(self._vectors) > self._remember:
            self._vectors.popitem(last=False)
        return out
