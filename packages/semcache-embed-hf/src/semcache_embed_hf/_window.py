"""Does a text fit the model's input window? Counted with a copy of its tokenizer."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["SPECIAL_TOKENS", "Window", "counting_tokenizer"]

SPECIAL_TOKENS = 4
"""Room left for the tokens a tokenizer adds around a text ([CLS], [SEP], <s>...)."""


def counting_tokenizer(tokenizer: Any) -> Any | None:
    """A private copy of a ``tokenizers.Tokenizer`` (or of a transformers fast
    tokenizer's backend) that neither truncates nor pads; ``None`` when there is none.

    A copy, so counting on the event loop never shares state with the model's thread.
    """
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    to_str = getattr(backend, "to_str", None)
    if to_str is None:
        return None
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


class Window:
    """The model's input window: ``fits(text)`` when the model reads all of ``text``.

    Text short enough that it cannot reach ``max_tokens`` (a token covers at least one
    UTF-8 byte) fits without tokenising; text over ``max_chars`` never fits; anything
    between is tokenised as the model would (``prompt`` and ``lowercase`` included).
    Without a tokenizer to count with, such text is taken not to fit.
    """

    def __init__(
        self,
        tokenizer: Any | None,
        max_tokens: int,
        *,
        max_chars: int,
        prompt: str | None = None,
        lowercase: bool = False,
    ) -> None:
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self._tokenizer = tokenizer
        self._prompt = prompt or ""
        self._lowercase = lowercase
        self._sure = max_tokens - SPECIAL_TOKENS - len(self._prompt.encode("utf-8"))
        self.fits = lru_cache(maxsize=1024)(self._fits)

    def _fits(self, text: str) -> bool:
        if len(text) <= self._sure and len(text.encode("utf-8", "surrogatepass")) <= self._sure:
            return True
        if len(text) > self.max_chars or self._tokenizer is None:
            return False
        return self.count(text) <= self.max_tokens

    def count(self, text: str) -> int:
        """Tokens the model would see for ``text``, with its special tokens."""
        assert self._tokenizer is not None
        prepared = self._prompt + text
        if self._lowercase:
            prepared = prepared.lower()
        return len(self._tokenizer.encode(prepared).ids)
