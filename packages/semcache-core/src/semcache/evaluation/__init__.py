"""Hit quality: for labelled pairs, store ``a``, look up ``b``, count right and wrong hits.

Input is JSON lines, one pair each::

    {"a": "cached question", "b": "new question", "same_answer": true, "category": "..."}

``a`` and ``b`` may also be conversations (lists of ``{"role", "content"}`` messages) or
whole request bodies (Chat Completions, Responses, Anthropic Messages). Each request is
split as the HTTP cache splits it (:func:`semcache.http.extract.extract`): the last user
turn is the question, the earlier turns are the context, and the rest of the body
(system prompt included) goes into the partition; the ``context_mode`` setting decides
how the earlier turns are matched (turn by turn, exactly or by meaning), as it does in
production.

Every pair gets its own partition in the configured cache (any embedder, any stores),
so pairs never see each other; the entries are deleted as the run goes.

- :mod:`._pairs`: reading pairs and splitting requests;
- :mod:`._run`: the run through a real cache;
- :mod:`._report`: counts, rates, tables and JSON;
- :mod:`._plot`: the threshold chart (optional matplotlib);
- :mod:`._tune`: fitting the default verifier's levels (``semcache tune``).
"""

from semcache.errors import EvaluationError
from semcache.evaluation._pairs import (
    Pair,
    Side,
    load_pairs,
    parse_pair,
    split_conversation,
    split_request,
)
from semcache.evaluation._plot import plot_report, require_matplotlib
from semcache.evaluation._report import Metrics, Report, SweepPoint, metrics
from semcache.evaluation._run import evaluate, sweep_thresholds
from semcache.evaluation._tune import SetScore, TuneResult, tune

__all__ = [
    "EvaluationError",
    "Metrics",
    "Pair",
    "Report",
    "SetScore",
    "Side",
    "SweepPoint",
    "TuneResult",
    "evaluate",
    "load_pairs",
    "metrics",
    "parse_pair",
    "plot_report",
    "require_matplotlib",
    "split_conversation",
    "split_request",
    "sweep_thresholds",
    "tune",
]
