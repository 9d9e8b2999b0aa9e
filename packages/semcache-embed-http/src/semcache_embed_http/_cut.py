"""Cutting texts to a character bound from the model's input limit, before anything else.

A provider reads at most its model's token limit of a text and drops the rest, but the
whole text is still sent, parsed and, for some APIs, billed. A token covers at least one
character and real text averages well over three, so ``CHARS_PER_TOKEN`` characters a
token keeps everything the model reads while a 1 MiB text costs a few KiB on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CHARS_PER_TOKEN", "DEFAULT_MAX_INPUT_TOKENS", "char_limit", "cut_texts", "input_tokens"]

CHARS_PER_TOKEN = 8
"""Characters kept per token of the model's limit: a generous multiple of the real
average (3 to 5), so the cut text still fills the model's window."""

DEFAULT_MAX_INPUT_TOKENS = 8192
"""The limit used for a model whose own is unknown, and the most taken from a model's
table entry: the cache compares questions and short contexts, and a paid API bills every
token it reads."""


def input_tokens(model_limit: int | None) -> int:
    """The token limit to cut at for a model whose limit is ``model_limit`` (or unknown)."""
    if model_limit is None:
        return DEFAULT_MAX_INPUT_TOKENS
    return min(model_limit, DEFAULT_MAX_INPUT_TOKENS)


def char_limit(max_tokens: int) -> int:
    """Characters kept of each text for a model that reads ``max_tokens`` tokens."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1: {max_tokens}")
    return max_tokens * CHARS_PER_TOKEN


def cut_texts(texts: Sequence[str], max_chars: int) -> list[str]:
    """Each text cut to its first ``max_chars`` characters (short ones unchanged)."""
    return [t if len(t) <= max_chars else t[:max_chars] for t in texts]
