"""Settings of the grey-zone judge (group ``judge``): off unless ``SEMANTIC_CACHE_JUDGE`` names one.

The core declares them, as it declares the embedder's URL and key: the cache wraps its
verifier in :class:`~semcache.verify.judge.GreyZoneVerifier` when a judge is named, and
the judge plugin (``semcache-judge-llm`` for ``llm``) reads the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache.settings import check_declared, setting

__all__ = [
    "JUDGE",
    "JUDGE_API",
    "JUDGE_API_KEY",
    "JUDGE_BUDGET",
    "JUDGE_FLOOR",
    "JUDGE_MAX_CALLS_PER_LOOKUP",
    "JUDGE_MAX_TOKENS",
    "JUDGE_MODEL",
    "JUDGE_PRICE",
    "JUDGE_TIMEOUT_MS",
    "JUDGE_TOKEN_BUDGET",
    "JUDGE_URL",
    "JudgeSettings",
]

_P = "SEMANTIC_CACHE_"
JUDGE = _P + "JUDGE"
JUDGE_API = _P + "JUDGE_API"
JUDGE_URL = _P + "JUDGE_URL"
JUDGE_MODEL = _P + "JUDGE_MODEL"
JUDGE_API_KEY = _P + "JUDGE_API_KEY"
JUDGE_FLOOR = _P + "JUDGE_FLOOR"
JUDGE_TIMEOUT_MS = _P + "JUDGE_TIMEOUT_MS"
JUDGE_BUDGET = _P + "JUDGE_BUDGET"
JUDGE_TOKEN_BUDGET = _P + "JUDGE_TOKEN_BUDGET"
JUDGE_MAX_CALLS_PER_LOOKUP = _P + "JUDGE_MAX_CALLS_PER_LOOKUP"
JUDGE_MAX_TOKENS = _P + "JUDGE_MAX_TOKENS"
JUDGE_PRICE = _P + "JUDGE_PRICE"


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """A costlier second opinion on candidates the similarity threshold alone would turn away."""

    group_name: ClassVar[str] = "judge"

    judge: str = setting(
        JUDGE,
        "none",
        "Judge for the grey zone: `none`, `llm` (an OpenAI-compatible or Ollama chat model, "
        "`pip install semcache-judge-llm`) or a judge plugin's name. It wraps the verifier.",
    )
    judge_api: str = setting(
        JUDGE_API,
        "openai",
        "Protocol of the `llm` judge: `openai` (`/v1/chat/completions`) or `ollama` (`/api/chat`).",
        choices=("openai", "ollama"),
    )
    judge_url: str | None = setting(
        JUDGE_URL,
        None,
        "Base URL of the judge's chat API; empty: `http://127.0.0.1:11434` for `ollama`, "
        "required for `openai`.",
    )
    judge_model: str | None = setting(
        JUDGE_MODEL, None, "The judge's chat model (a small one: it answers yes or no)."
    )
    judge_api_key: str | None = setting(
        JUDGE_API_KEY, None, "API key sent to the judge (`Authorization: Bearer`).", secret=True
    )
    judge_floor: float = setting(
        JUDGE_FLOOR,
        0.55,
        "Lowest similarity a candidate may have to be sent to the judge; the vector search "
        "reaches down to it.",
        low=0.0,
        high=1.0,
    )
    judge_timeout_ms: int = setting(
        JUDGE_TIMEOUT_MS,
        800,
        "Budget for one judge call; past it the judge has no opinion (keep it well inside "
        "`SEMANTIC_CACHE_LOOKUP_TIMEOUT_MS`).",
        low=1,
    )
    judge_budget: int = setting(
        JUDGE_BUDGET,
        60,
        "Judge calls per minute at most; past it candidates are decided without the judge.",
        low=0,
    )
    judge_max_calls_per_lookup: int = setting(
        JUDGE_MAX_CALLS_PER_LOOKUP,
        1,
        "Judge calls one lookup may make: its best grey-zone candidates are asked, those "
        "after them keep the rules' verdict, so no request spends the budget for everyone.",
        low=1,
    )
    judge_token_budget: int | None = setting(
        JUDGE_TOKEN_BUDGET,
        None,
        "Judge tokens per minute at most (as the judge reports them); empty: no token bound.",
        low=1,
    )
    judge_max_tokens: int = setting(
        JUDGE_MAX_TOKENS,
        4,
        "Most tokens the judge may generate per call (its answer is one word).",
        low=1,
        high=64,
    )
    judge_price: float | None = setting(
        JUDGE_PRICE,
        None,
        "US dollars per million judge tokens (input and output), for the judge's cost in "
        "the metrics; empty: not priced.",
        low=0.0,
    )

    def __post_init__(self) -> None:
        check_declared(self)
