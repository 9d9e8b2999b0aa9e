"""Audits of semantic hits: after the client has its answer, the same request goes to the
upstream once more (a shadow call), the two answers are compared, and the outcome is
counted (:class:`~semcache.audit.ledger.AuditLedger`) and taught to the entry
(:meth:`semcache.SemanticCache.record_audit`).

A shadow call's answer is never stored and never counts as a request; any failure of
an audit (the upstream, the comparison, its time limit) is no outcome at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semcache.audit.compare import AnswerComparer, EmbeddingComparer
from semcache.audit.ledger import Audited, AuditLedger
from semcache.audit.sampler import AuditSampler
from semcache.audit.settings import AuditSettings

if TYPE_CHECKING:
    from semcache.cache import SemanticCache
    from semcache.http.responses import StoredResponse
    from semcache.settings import Settings

__all__ = ["AuditJob", "Auditor", "Shadow"]

log = logging.getLogger("semcache")

Shadow = Callable[[], Awaitable["StoredResponse | None"]]
"""Sends the audited request to the upstream again: its complete, successful answer, or
``None`` (any other answer). Given by the adapter, which alone can reach the upstream."""


@dataclass(frozen=True, slots=True)
class AuditJob:
    """A sampled hit waiting for its shadow call."""

    hit: Audited
    question: str
    cached: StoredResponse
    usd: float | None
    """What the shadow call is expected to cost (the stored answer's usage, priced)."""


class Auditor:
    """Samples semantic hits, runs their audits and keeps the outcomes.

    ``comparer`` decides whether two answers agree (default: the embeddings of their
    texts, by the cache's model, against ``audit_agreement``).
    """

    def __init__(
        self,
        cache: SemanticCache,
        settings: Settings,
        *,
        comparer: AnswerComparer | None = None,
        max_labels: int = 100,
    ) -> None:
        self.cache = cache
        self.settings = settings.group(AuditSettings)
        self.sampler = AuditSampler(self.settings)
        self.ledger = AuditLedger(max_labels)
        self.comparer = comparer

    @property
    def enabled(self) -> bool:
        return self.sampler.enabled

    def consider(
        self,
        *,
        entry_id: str,
        similarity: float,
        verdict: str | None,
        route: str,
        tenant: str,
        model: str | None,
        question: str,
        cached: StoredResponse,
        usd: float | None,
        sample: bool = True,
        version: str | None = None,
    ) -> AuditJob | None:
        """A semantic hit was served: its audit job when it is sampled, else ``None``
        (``sample=False``: an adapter that cannot ask the upstream again). ``version``:
        the answer served (:attr:`semcache.Hit.version`)."""
        hit = Audited(entry_id, similarity, route, tenant, verdict or "unknown", version)
        self.ledger.served(hit)
        if not sample or not self.sampler.wants(route, model):
            return None
        self.ledger.count("sampled")
        return AuditJob(hit, question, cached, usd)

    async def run(self, job: AuditJob, shadow: Shadow) -> bool | None:
        """Audit one hit: True when the answers agreed, False when the hit was wrong,
        ``None`` for no outcome (skipped by the budget, or anything failed)."""
        refused = self.sampler.acquire(job.usd)
        if refused is not None:
            self.ledger.count("skipped_" + refused)
            return None
        self.ledger.count("started")
        try:
            async with asyncio.timeout(self.settings.audit_timeout):
                score = await self._score(job, shadow)
        except Exception as exc:
            log.debug("semcache: audit of %s has no outcome (%r)", job.hit.entry_id, exc)
            score = None
        if score is None:
            self.ledger.count("no_outcome")
            return None
        agreed = score >= self.settings.audit_agreement
        self.ledger.outcome(job.hit, agreed)
        # Taught to the answer that was served only: the shadow call took seconds, in
        # which the entry may have been stored again with a new answer.
        await self.cache.record_audit(
            job.hit.entry_id, job.hit.similarity, agreed, version=job.hit.version
        )
        return agreed

    async def _score(self, job: AuditJob, shadow: Shadow) -> float | None:
        # Imported here: semcache.http imports this module.
        from semcache.audit.answers import answer_text

        fresh = await shadow()
        if fresh is None:
            return None
        cached_text, fresh_text = answer_text(job.cached), answer_text(fresh)
        if cached_text is None or fresh_text is None:
            return None
        comparer = self.comparer
        if comparer is None:
            if self.cache.embedder is None:
                return None
            comparer = EmbeddingComparer(self.cache.embedder)
        return await comparer.agreement(job.question, cached_text, fresh_text)

    async def feedback(
        self,
        entry_id: str,
        *,
        wrong: bool = True,
        evict: bool = True,
        version: str | None = None,
    ) -> bool | None:
        """An application's report on the answer it got from ``entry_id``: a wrong one is
        counted (under the labels of this process's last hit on it) and the entry evicted,
        or, with ``evict=False``, taught to the entry as a failed audit. ``version``: the
        answer it got (``X-Semcache-Entry-Version``); an entry stored again since is left
        as it is. True when the entry existed and, with ``version``, still held that
        answer (always True for a report that the answer was right); ``None`` when a
        store failed or ran out of time (:meth:`SemanticCache.report_wrong_hit
        <semcache.SemanticCache.report_wrong_hit>`).

        A wrong one is counted (``feedback_wrong``) once it has an answer, True or False;
        one that got ``None`` counts as ``feedback_failed`` instead, so a report sent again
        after a failure counts once as ``feedback_wrong``."""
        if not wrong:
            self.ledger.count("feedback_right")
            return True
        last = self.ledger.last_served(entry_id)
        found = await self.cache.report_wrong_hit(
            entry_id,
            similarity=last.similarity if last is not None else None,
            evict=evict,
            version=version,
        )
        self.ledger.count("feedback_failed" if found is None else "feedback_wrong")
        return found
