"""A judge for the grey zone: a costlier second opinion on candidates the rules cannot settle.

Below the similarity threshold lie paraphrases that need the same answer ("what can I use
instead of buttermilk" / "a good substitute for buttermilk") next to questions that need
another. :class:`GreyZoneVerifier` wraps a verifier (the rules) and sends those candidates,
from a ``floor`` up to the threshold, plus those the soft rules (:data:`SOFT_RULES`)
turned down, to a :class:`Judge`: a cross-encoder, or a small chat model asked whether the
two requests need the same answer. A hard rule (negation, number, date...) is final: the
judge never sees such a pair. A judge that is slow, failing, out of budget or unsure has no
opinion, and the verifier's own verdict stands, so the cache never does worse than without it.

One lookup makes at most ``max_calls_per_lookup`` judge calls (:class:`LookupJudging`,
opened by the cache per lookup with :func:`judging`), so no request can spend the judge's
budget for everyone by landing many candidates in the grey zone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from semcache.budget import time_left
from semcache.verify import Verdict

if TYPE_CHECKING:
    from semcache.protocols import Verifier
    from semcache.settings import Settings

__all__ = [
    "SOFT_RULES",
    "GreyZoneVerifier",
    "Judge",
    "JudgeBudget",
    "LookupJudging",
    "judge_stats",
    "judging",
    "with_judge",
]

log = logging.getLogger("semcache.judge")

SOFT_RULES = frozenset({"topic", "question"})
"""Rules a judge may overrule: they weigh similarity against differing words, a guess the
judge can make better. Every other rule (negation, number, date, unit, identifier, quoted,
entity, polarity, direction, instruction, a plain verifier's ``verifier``) is final."""

_WINDOW = 60.0
"""The budget's window in seconds (budgets are per minute)."""


@runtime_checkable
class Judge(Protocol):
    """Decides whether two requests need the same answer; costlier than the rules.

    ``query`` and ``candidate`` are normalised question texts. ``True``: the same answer,
    ``False``: another one, ``None``: no opinion (an error, a malformed answer). It is
    called under a timeout; it may keep ``tokens`` (an int) and ``cost_usd`` (a float),
    running totals of what its calls cost, which the metrics and the token budget read.
    """

    async def same_answer(self, query: str, candidate: str) -> bool | None: ...

    async def aclose(self) -> None: ...


class JudgeBudget:
    """Judge calls, and optionally judge tokens, per sliding minute."""

    def __init__(
        self,
        calls_per_minute: int,
        tokens_per_minute: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls_per_minute = calls_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._calls: collections.deque[float] = collections.deque()
        self._tokens: collections.deque[tuple[float, int]] = collections.deque()
        self._token_sum = 0

    def take(self) -> bool:
        """Reserve one call now; ``False`` when the minute's calls or tokens are spent."""
        now = self._clock()
        while self._calls and self._calls[0] <= now - _WINDOW:
            self._calls.popleft()
        while self._tokens and self._tokens[0][0] <= now - _WINDOW:
            self._token_sum -= self._tokens.popleft()[1]
        if len(self._calls) >= self.calls_per_minute:
            return False
        if self.tokens_per_minute is not None and self._token_sum >= self.tokens_per_minute:
            return False
        self._calls.append(now)
        return True

    def spend_tokens(self, tokens: int) -> None:
        if tokens > 0:
            self._tokens.append((self._clock(), tokens))
            self._token_sum += tokens


class LookupJudging:
    """The judge's part in one lookup: the calls made so far, which
    :attr:`GreyZoneVerifier.max_calls_per_lookup` caps, and the hits its yes won, which the
    cache reads to label such a hit ``judge``. One per lookup (:func:`judging`), never
    shared between requests."""

    __slots__ = ("calls", "won")

    def __init__(self) -> None:
        self.calls = 0
        self.won = 0


_lookup: contextvars.ContextVar[LookupJudging | None] = contextvars.ContextVar(
    "semcache_judging", default=None
)


@contextlib.contextmanager
def judging() -> Iterator[LookupJudging]:
    """A fresh :class:`LookupJudging` for the code inside: the cache wraps each lookup's
    candidate checks in it. Outside one, a verifier call is a lookup of its own (one
    candidate: one judge call at most)."""
    tally = LookupJudging()
    token = _lookup.set(tally)
    try:
        yield tally
    finally:
        _lookup.reset(token)


class GreyZoneVerifier:
    """The ``inner`` verifier first; then ``judge`` on what the rules cannot settle.

    For each candidate, with the lookup's threshold (the cache passes it; else the one
    :meth:`use_threshold` was told):

    - a hard-rule rejection by ``inner`` is final; the judge is not asked;
    - at or above the threshold, a candidate ``inner`` accepts is served without the judge;
    - from ``floor`` up, a candidate below the threshold, or turned down by a soft rule
      (:data:`SOFT_RULES`), goes to the judge: yes serves it (a hit the judge won), no
      rejects it (rule ``judge``), no opinion (timeout, error, budget spent) leaves the
      verdict as it was: ``inner``'s at or above the threshold, else rule ``threshold``.

    A lookup asks the judge ``max_calls_per_lookup`` times at most: the cache checks its
    candidates best first, so the judge hears about the best grey-zone ones, and those
    after them keep the rules' verdict (as with no opinion).

    :attr:`search_floor` tells the cache to search down to ``floor``. ``inner`` may be
    ``None`` (similarity alone, then the judge).
    """

    def __init__(
        self,
        inner: Verifier | None,
        judge: Judge,
        *,
        floor: float = 0.55,
        timeout: float = 0.8,
        budget: JudgeBudget | None = None,
        threshold: float = 0.85,
        max_calls_per_lookup: int = 1,
    ) -> None:
        if max_calls_per_lookup < 1:
            raise ValueError("max_calls_per_lookup must be at least 1")
        self.inner = inner
        self.judge = judge
        self.floor = floor
        self.timeout = timeout
        self.budget = budget if budget is not None else JudgeBudget(60)
        self.threshold = threshold
        self.max_calls_per_lookup = max_calls_per_lookup
        self.counters: dict[str, int] = {
            "calls": 0,
            "yes": 0,
            "no": 0,
            "no_opinion": 0,
            "over_budget": 0,
            "over_lookup_cap": 0,
            "hits_won": 0,
        }
        """``calls``: judge calls made; ``yes``/``no``/``no_opinion``: their outcomes
        (a timeout or an error has no opinion); ``over_budget``: candidates that would have
        gone to the judge but the budget was spent; ``over_lookup_cap``: the same, but their
        lookup had made its ``max_calls_per_lookup`` calls; ``hits_won``: candidates served
        on the judge's yes that the rules or the threshold alone would have turned away."""
        self._tokens_seen = 0

    @property
    def search_floor(self) -> float:
        """The lowest similarity worth fetching: the cache's vector search reaches down to it."""
        return self.floor

    def use_threshold(self, threshold: float) -> None:
        """The cache's threshold: kept here, and passed on to ``inner``."""
        self.threshold = threshold
        forward: Callable[[float], None] | None = getattr(self.inner, "use_threshold", None)
        if forward is not None:
            forward(threshold)

    async def verify(self, query: str, candidate: str, similarity: float) -> bool:
        # The cache asks this of earlier conversation turns (questions go to verdict()):
        # a yes here lets the question be checked, it wins no hit by itself.
        return (await self._decide(query, candidate, similarity, None, won=False)).accepted

    async def verdict(
        self, query: str, candidate: str, similarity: float, *, threshold: float | None = None
    ) -> Verdict:
        return await self._decide(query, candidate, similarity, threshold, won=True)

    async def _decide(
        self, query: str, candidate: str, similarity: float, threshold: float | None, won: bool
    ) -> Verdict:
        bar = self.threshold if threshold is None else threshold
        inner = await self._inner(query, candidate, similarity)
        if inner.rule is not None and inner.rule not in SOFT_RULES:
            return inner  # a hard rule: the judge never overrules it
        if inner.accepted and similarity >= bar:
            return inner
        fallback = inner if similarity >= bar else Verdict("threshold", inner.edits)
        if similarity < self.floor:
            return fallback
        same = await self._ask(query, candidate)
        if same is None:
            return fallback
        if same:
            if won:
                self.counters["hits_won"] += 1
                lookup = _lookup.get()
                if lookup is not None:
                    lookup.won += 1
            return Verdict(None, inner.edits)
        return Verdict("judge", inner.edits)

    def stats(self) -> dict[str, Any]:
        """The counters, plus the judge's ``tokens`` and ``cost_usd`` (0 when it keeps none)."""
        out: dict[str, Any] = dict(self.counters)
        out["tokens"] = int(getattr(self.judge, "tokens", 0))
        out["cost_usd"] = float(getattr(self.judge, "cost_usd", 0.0))
        return out

    async def aclose(self) -> None:
        for part in (self.judge, self.inner):
            close: Callable[[], Awaitable[None]] | None = getattr(part, "aclose", None)
            if close is not None:
                await close()

    async def _inner(self, query: str, candidate: str, similarity: float) -> Verdict:
        if self.inner is None:
            return Verdict(None)
        verdict: Callable[[str, str, float], Awaitable[Verdict]] | None = getattr(
            self.inner, "verdict", None
        )
        if verdict is not None:
            return await verdict(query, candidate, similarity)
        accepted = await self.inner.verify(query, candidate, similarity)
        return Verdict(None if accepted else "verifier")

    async def _ask(self, query: str, candidate: str) -> bool | None:
        lookup = _lookup.get()
        if lookup is not None and lookup.calls >= self.max_calls_per_lookup:
            # Before the shared budget: a capped candidate takes nothing from it.
            self.counters["over_lookup_cap"] += 1
            return None
        if not self.budget.take():
            self.counters["over_budget"] += 1
            return None
        # At most half of what is left of the lookup: a judge that never answers leaves
        # time for the candidates after it, which the rules alone may serve.
        left = time_left()
        timeout = self.timeout if left is None else min(self.timeout, left / 2)
        if timeout <= 0:
            return None
        if lookup is not None:
            lookup.calls += 1
        self.counters["calls"] += 1
        try:
            async with asyncio.timeout(timeout):
                same = await self.judge.same_answer(query, candidate)
        except TimeoutError:
            log.debug("semcache: the judge did not answer within %.0f ms", timeout * 1000)
            same = None
        except Exception as exc:  # a judge problem is no opinion, never a failed lookup
            log.debug("semcache: the judge failed (%s: %s)", type(exc).__name__, exc)
            same = None
        tokens = int(getattr(self.judge, "tokens", 0))
        self.budget.spend_tokens(tokens - self._tokens_seen)
        self._tokens_seen = tokens
        self.counters["no_opinion" if same is None else "yes" if same else "no"] += 1
        return same


def with_judge(verifier: Verifier | None, settings: Settings) -> Verifier | None:
    """``verifier`` wrapped in a :class:`GreyZoneVerifier` when the ``judge`` setting names
    a judge (plugin kind ``judge``), else ``verifier`` as it is."""
    from semcache import plugins
    from semcache.verify.settings import JudgeSettings

    s = settings.group(JudgeSettings)
    if s.judge == "none":
        return verifier
    judge = plugins.create_judge(settings, s.judge)
    return GreyZoneVerifier(
        verifier,
        judge,
        floor=s.judge_floor,
        timeout=s.judge_timeout_ms / 1000,
        budget=JudgeBudget(s.judge_budget, s.judge_token_budget),
        max_calls_per_lookup=s.judge_max_calls_per_lookup,
    )


def judge_stats(verifier: object) -> dict[str, Any] | None:
    """A grey-zone verifier's judge counters (:meth:`GreyZoneVerifier.stats`), else ``None``."""
    return verifier.stats() if isinstance(verifier, GreyZoneVerifier) else None
