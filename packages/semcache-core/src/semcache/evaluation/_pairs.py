"""Labelled pairs: read them, and turn each request into what the HTTP cache keys on.

The split of a request into question, earlier turns and partition is production's own
(:func:`semcache.http.extract.extract` and :func:`semcache.http.partition.build_partition`,
as :class:`semcache.http.HttpCachePolicy` calls them), so the numbers measure the
extraction that serves real traffic.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcache.errors import EvaluationError
from semcache.http.extract import default_extract_model, extract
from semcache.http.partition import build_partition, wants_stream

__all__ = [
    "Pair",
    "Side",
    "load_pairs",
    "parse_pair",
    "split_conversation",
    "split_request",
]

_METHOD = "POST"
_PATH = "/"  # pairs carry no path: one for all, so only the bodies decide


@dataclass(frozen=True, slots=True)
class Side:
    """One request of a pair, as the HTTP cache sees it.

    ``query`` is the embedded question and ``context`` the earlier turns as text (``None``
    for a first question). ``partition`` hashes everything else in the request, earlier
    turns included (``context_mode="exact"``); ``partition_without_context`` leaves the
    earlier turns out, for the ``turns`` and ``semantic`` context modes, where the cache
    matches them.
    """

    query: str
    context: str | None = None
    partition: str = ""
    partition_without_context: str = ""

    def keys(self, context_mode: str) -> tuple[str, str | None]:
        """The partition and the context the cache is given under ``context_mode``."""
        if self.context and context_mode != "exact":
            return self.partition_without_context, self.context
        return self.partition, None


@dataclass(frozen=True, slots=True)
class Pair:
    """A cached request ``a``, a new request ``b``, and whether ``a``'s answer fits ``b``."""

    id: str
    a: Side
    b: Side
    same_answer: bool
    category: str | None = None


def split_request(body: Mapping[str, Any]) -> Side | None:
    """``body`` (a parsed JSON request: Chat Completions, Responses, Anthropic Messages,
    or query/prompt/input) as the cache sees it; ``None`` when it holds no question."""
    found = extract(body)
    if found is None:
        return None
    rest_without_context = found.rest if found.context is None else found.rest_without_context
    return Side(
        found.query,
        found.context,
        _partition(body, found.rest),
        _partition(body, rest_without_context),
    )


def split_conversation(messages: Sequence[Any]) -> Side:
    """A list of chat messages as a Chat Completions request: the last user turn is the
    question, the earlier turns the context, system prompts go into the partition."""
    side = split_request({"messages": list(messages)})
    if side is None:
        raise EvaluationError("a conversation needs a last user message with text")
    return side


def _partition(body: Mapping[str, Any], rest: Any) -> str:
    return build_partition(
        method=_METHOD,
        path=_PATH,
        model=default_extract_model(None, body),
        rest=rest,
        stream=wants_stream(body, ()),
    )


def _side(value: Any, where: str) -> Side:
    if isinstance(value, str):
        # A bare question is a one-message chat; a blank one is counted as skipped.
        return split_request({"messages": [{"role": "user", "content": value}]}) or Side(value)
    if isinstance(value, list):
        side = split_request({"messages": value})
    elif isinstance(value, dict):
        side = split_request(value)
    else:
        raise EvaluationError(
            f"{where}: expected a string or a list of chat messages, or a request body (an object)"
        )
    if side is None:
        raise EvaluationError(f"{where}: no question in the request (the cache would skip it)")
    return side


def parse_pair(obj: Any, index: int = 0) -> Pair:
    """One input line (already decoded) as a :class:`Pair`."""
    if not isinstance(obj, dict):
        raise EvaluationError(f"pair {index}: expected a JSON object")
    missing = [k for k in ("a", "b", "same_answer") if k not in obj]
    if missing:
        raise EvaluationError(f"pair {index}: missing {', '.join(missing)}")
    label = obj["same_answer"]
    if not isinstance(label, bool):
        raise EvaluationError(f"pair {index}: same_answer must be true or false")
    category = obj.get("category")
    return Pair(
        id=str(obj.get("id", index)),
        a=_side(obj["a"], f"pair {index} a"),
        b=_side(obj["b"], f"pair {index} b"),
        same_answer=label,
        category=None if category is None else str(category),
    )


def load_pairs(
    path: str | Path,
    *,
    limit: int | None = None,
    sample: bool = False,
    seed: int = 0,
) -> list[Pair]:
    """Read a JSON-lines file; ``limit`` keeps the first N pairs, or N at random with
    ``sample`` (reproducible through ``seed``)."""
    pairs = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvaluationError(f"{path}:{n}: not JSON ({exc.msg})") from None
                pairs.append(parse_pair(obj, n))
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if limit is not None and limit < len(pairs):
        pairs = random.Random(seed).sample(pairs, limit) if sample else pairs[:limit]
    return pairs
