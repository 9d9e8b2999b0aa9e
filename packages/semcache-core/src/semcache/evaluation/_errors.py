"""The one error of the evaluation."""

from __future__ import annotations

from semcache.errors import SemcacheError

__all__ = ["EvaluationError"]


class EvaluationError(SemcacheError):
    """The input is malformed or the cache failed during a run (results would be wrong)."""
