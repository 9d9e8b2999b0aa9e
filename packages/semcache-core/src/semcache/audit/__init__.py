"""Audited hits: the live false-hit rate, quarantine and per-entry thresholds.

A share of semantic hits is asked of the upstream again in the background (shadow
calls), the cached and fresh answers are compared, and the outcomes are counted and
taught to the entries. Off by default: every audit is a full upstream call. See
``docs/operations/audit.md``.
"""

from semcache.audit.answers import answer_text
from semcache.audit.auditor import AuditJob, Auditor, Shadow
from semcache.audit.compare import AnswerComparer, EmbeddingComparer
from semcache.audit.learner import STATE_KEY, AuditState, learn, upper_bound
from semcache.audit.ledger import EVENTS, Audited, AuditLedger
from semcache.audit.sampler import AuditSampler
from semcache.audit.settings import AuditSettings

__all__ = [
    "EVENTS",
    "STATE_KEY",
    "AnswerComparer",
    "AuditJob",
    "AuditLedger",
    "AuditSampler",
    "AuditSettings",
    "AuditState",
    "Audited",
    "Auditor",
    "EmbeddingComparer",
    "Shadow",
    "answer_text",
    "learn",
    "upper_bound",
]
