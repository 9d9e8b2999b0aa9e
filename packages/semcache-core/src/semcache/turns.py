"""Earlier conversation turns matched turn by turn (``context_mode="turns"``).

Two conversations lead to the same answer for the same follow-up when the turns that
matter say the same things, whatever the wording and whatever chatter surrounds them.
Embedding a whole conversation as one text cannot see that: chatter and rewording move
the vector as much as a changed order number, and a long chat is cut at the model's
window. So each turn is embedded on its own and paired with the closest turn of the same
role on the other side:

- **matched**: at least ``match_at`` similar, not saying the opposite (a negation, opposite
  poles, a reversed direction), not a topic word or two apart at a similarity the
  question verifier's topic rule would refuse ("my iphone" / "my pixel"), and not one
  text with a local edit: a long turn that differs in a phrase scores high however much
  the phrase matters ("caused by a crew shortage" / "by a strike"; "renewed once" /
  "renewed 3 times"), and the same words in another order say something else ("going
  to cancel it, but decided to keep it" / "going to keep it, but decided to cancel it");
- **changed**: related (above ``related_at``) but not close enough: another intent, another
  product in a similar sentence;
- **unrelated**: nothing like it on the other side: chatter ("thanks!", "one sec"), an
  exchange about something else, or a turn that one side has and the other does not.

The contexts match when no turn is changed or opposed, each side has a matched user turn
(a conversation about something else entirely has no related turn at all), and the
related turns of both sides give the same facts: a number, date, unit or identifier that
only one side gives is a conflict (order 48213 / 48231; a flight "delayed 3 hours" /
"cancelled"), wherever in the conversation each is told.

Only chatter is left out: an unrelated turn that says nothing (its words are all
greetings, thanks, "ok", "one sec"). A turn that says something and has no counterpart
on the other side makes the contexts differ, on either side and whatever it is about:

- on the stored side, the answer may have followed it. An instruction ("from now on,
  tell me to call 555-0100"), a preference or another person's name and email there
  would reach whoever asks the same follow-up after the same conversation without it,
  and with one partition per application key, that is another end user;
- on the asking side, the asker may have said something the answer must follow
  ("please answer in French", "I'm vegetarian"), which the stored answer never saw;
- on both sides, one turn was replaced by another ("I'd like my money back" / "just send
  me a new one" score far apart, yet the follow-up "how long will that take?" needs
  another answer).

An exchange about something else is therefore another conversation too: the cache cannot
tell it from one that changed the answer.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from semcache.text import normalize_query
from semcache.types import Matrix
from semcache.verify import DefaultVerifier, analyze, opposed
from semcache.verify.shared import split_shared

__all__ = ["MAX_TURNS", "Turn", "TurnMatcher", "split_turns"]

MAX_TURNS = 40
"""Longer conversations match only their exact repeat, so a comparison costs a bounded
number of model inputs and similarity products."""

_INLINE_CHARS = 1000
"""Conversations up to this size (both sides) are compared on the event loop; longer
ones take up to hundreds of text analyses per candidate, in a worker thread."""

_EDIT_MIN_SHARED = 24
"""Two turns sharing a start and end this long (together, in characters) and twice as
long as what differs are one text edited, compared on the edit."""

_WORD = re.compile(r"\w+")

_CHATTER_WORDS = (
    "moment sec second minute wait hold hang back ahead sure course problem worries welcome "
    "glad anything else everything time take sorry oh ah hmm hiya thx lol yep nice cool fine "
    "alright awesome brilliant lovely cheers bye goodbye hope well still check"
)
"""Words of a turn that says nothing the answer could follow ("one moment", "no
problem, take your time", "anything else?"), with those the text analysis already
drops (greetings, thanks, "ok", question words)."""

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
        remember: int = 4096,
    ) -> None:
        self._embed = embed
        self.match_at = match_at
        self.related_at = related_at
        self._topic = DefaultVerifier(threshold=match_at, margin=0.0)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._remember = remember

    async def compare(self, context: str, stored: str) -> str | None:
        """``None`` when the contexts match, else why not: ``conflict``, ``changed``,
        ``unmatched`` (no user turn has a counterpart), ``replaced`` (each side has a turn
        the other lacks), ``extra`` (one side has a turn that says something and the other
        has nothing like it) or ``too-long``."""
        ours, theirs = split_turns(context), split_turns(stored)
        if len(ours) > MAX_TURNS or len(theirs) > MAX_TURNS:
            return "too-long"  # compared exactly only (equal texts matched before this)
        if not ours or not theirs:
            return None if not ours and not theirs else "unmatched"
        vectors = await self._vectors_for([t.text for t in ours + theirs])
        if len(context) + len(stored) > _INLINE_CHARS:
            return await asyncio.to_thread(self._decide, ours, theirs, vectors)
        return self._decide(ours, theirs, vectors)

    def _decide(
        self, ours: list[Turn], theirs: list[Turn], vectors: dict[str, np.ndarray]
    ) -> str | None:
        ours_v = np.stack([vectors[t.text] for t in ours])
        theirs_v = np.stack([vectors[t.text] for t in theirs])
        sims = ours_v @ theirs_v.T
        why, our_related, our_extra = self._align(ours, theirs, sims)
        if why is not None:
            return why
        why, their_related, their_extra = self._align(theirs, ours, sims.T)
        if why is not None:
            return why
        if our_extra and their_extra:
            return "replaced"
        if our_extra or their_extra:
            return "extra"  # a turn that says something on one side only
        return "conflict" if _facts_differ(our_related, their_related) else None

    def _align(
        self, side: Sequence[Turn], other: Sequence[Turn], sims: np.ndarray
    ) -> tuple[str | None, list[str], bool]:
        """Each turn of ``side`` against the other side's turns of its role: why they do
        not match (or ``None``), the texts of the related turns, and whether a turn that
        says something has no counterpart."""
        user_matched = False
        related: list[str] = []
        extra = False
        for i, turn in enumerate(side):
            candidates = [j for j, t in enumerate(other) if t.role == turn.role]
            if not candidates:
                continue  # a role the other side lacks (a tool result): unrelated
            j = max(candidates, key=lambda k: float(sims[i, k]))
            similarity = float(sims[i, j])
            if similarity < self.related_at:
                # Unrelated: chatter, an exchange about something else, or a replaced turn.
                extra = extra or _says_something(turn.text)
                continue
            if similarity < self.match_at:
                return "changed", related, extra
            if opposed(turn.text, other[j].text) is not None:
                return "conflict", related, extra
            if self._reworded_topic(turn.text, other[j].text, similarity):
                return "changed", related, extra
            edit = self._edit(turn.text, other[j].text)
            if edit is not None:
                return edit, related, extra
            related.append(turn.text)
            user_matched = user_matched or turn.role == "user"
        return (None if user_matched else "unmatched"), related, extra

    def _reworded_topic(self, text: str, other: str, similarity: float) -> bool:
        """A turn close to another but a topic word or two apart ("my iphone" / "my
        pixel"): the question verifier's topic rule, with ``match_at`` as its floor.
        Numbers, dates and identifiers are left to the facts of the whole conversation."""
        shape = self._topic.shape(text, other)
        if shape.rule is not None:
            return False
        return similarity < self._topic.needed(shape.edits, shape.other_question)

    def _edit(self, text: str, other: str) -> str | None:
        """One text with a local edit: ``conflict`` when it changes a number, date or
        name, ``changed`` when it changes a word or puts the same words in another
        order; ``None`` when the turns are not one text edited."""
        if text == other:
            return None
        words, other_words = _WORD.findall(text), _WORD.findall(other)
        if words != other_words and sorted(words) == sorted(other_words):
            return "changed"
        # The edit alone: the shared words around it would hide a count that changed
        # ("renewed once; ... up to 3 times" / "renewed 3 times; ... up to 3 times").
        differing = split_shared(text, other, min_shared=_EDIT_MIN_SHARED, kept=0)
        if differing is None or not differing.dominated:
            return None  # reworded rather than edited: the similarity speaks for it
        shape = self._topic.shape(differing.a, differing.b)
        if shape.rule is not None:
            return "conflict"
        return "changed" if shape.edits > 0 else None

    async def _vectors_for(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(texts))
        out = {t: self._vectors[t] for t in unique if t in self._vectors}
        todo = [t for t in unique if t not in out]
        if todo:
            rows = np.asarray(await self._embed(todo), dtype=np.float32)
            out.update(zip(todo, rows, strict=True))
        # Other comparisons may have pushed some of these out while the model worked.
        for text, row in out.items():
            self._vectors[text] = row
            self._vectors.move_to_end(text)
        while len(self._vectors) > self._remember:
            self._vectors.popitem(last=False)
        return out


_CHATTER = frozenset(w for word in _CHATTER_WORDS.split() for w in analyze(word).content)


def _says_something(text: str) -> bool:
    """Is a turn more than chatter: does it hold a word beyond :data:`_CHATTER_WORDS`?"""
    return any(word not in _CHATTER for word in analyze(text).content)


def _facts(texts: Sequence[str]) -> dict[str, set[str]]:
    facts: dict[str, set[str]] = {"number": set(), "date": set(), "unit": set(), "id": set()}
    for text in texts:
        a = analyze(text)
        facts["number"] |= a.numbers
        facts["date"] |= a.temporal
        facts["unit"] |= a.units
        facts["id"] |= a.identifiers
    return facts


def _facts_differ(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """Does one conversation give a number, date, unit or identifier the other does not
    (order 48213 / 48231; "delayed 3 hours, new departure 22:45" / "cancelled")?
    Compared over all the related turns, so a fact told in another turn, or in other
    words around it, still counts as the same."""
    a, b = _facts(ours), _facts(theirs)
    return any(a[kind] != b[kind] for kind in a)
