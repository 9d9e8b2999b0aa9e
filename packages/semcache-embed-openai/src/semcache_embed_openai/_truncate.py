"""Cutting inputs to the model's token limit, so a long question is embedded, not refused."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

__all__ = ["Truncator", "encoding_name_for"]

log = logging.getLogger("semcache.embed_openai")

_loads: dict[str, Future[Any]] = {}
_loads_lock = threading.Lock()


def encoding_name_for(model: str) -> str:
    """tiktoken's encoding for an OpenAI model (a table lookup, no file); cl100k_base otherwise."""
    import tiktoken

    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return "cl100k_base"


def _load(name: str) -> Future[Any]:
    # tiktoken fetches its BPE file on first use (unless TIKTOKEN_CACHE_DIR holds it),
    # and an unreachable host can hang for minutes: load in a daemon thread, once per
    # process, so a request waits for it at most a bounded time.
    with _loads_lock:
        future = _loads.get(name)
        if future is not None:
            return future
        future = Future()
        _loads[name] = future

    def run() -> None:
        try:
            import tiktoken

            future.set_result(tiktoken.get_encoding(name))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=f"semcache-tiktoken-{name}", daemon=True).start()
    return future


class Truncator:
    """Cuts texts to ``max_tokens`` tokens.

    The tiktoken encoding is loaded when the first long text arrives (most questions
    are far below any limit and never need it), waiting for it at most ``load_wait``
    seconds once. With it the cut is exact. Without it (offline with no cached BPE
    file, or still loading) texts are cut to ``max_tokens`` UTF-8 bytes instead: every
    BPE token covers at least one byte, so that never exceeds the limit, at the price
    of keeping less text (about a quarter of the limit for English).
    """

    def __init__(self, max_tokens: int, encoding: str | Any, *, load_wait: float = 2.0) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self.max_tokens = max_tokens
        self._name = encoding if isinstance(encoding, str) else None
        self._encoding: Future[Any] | None = None
        if not isinstance(encoding, str):
            self._encoding = Future()
            self._encoding.set_result(encoding)
        self._load_wait = load_wait
        self._warned = False

    def needed(self, texts: Sequence[str]) -> bool:
        """Whether any text may be over the limit (cheap: no tokenising)."""
        # A text of at most max_tokens bytes has at most max_tokens tokens; a character
        # is at most 4 bytes, so the byte count is only computed for longer texts.
        quarter = self.max_tokens // 4
        return any(len(t) > quarter and len(t.encode("utf-8")) > self.max_tokens for t in texts)

    def encoding(self) -> Any | None:
        """The tiktoken encoding when it is available, else ``None`` (blocking, bounded)."""
        if self._encoding is None:
            assert self._name is not None
            self._encoding = _load(self._name)
            with contextlib.suppress(Exception):  # slow or failed: handled below
                self._encoding.exception(timeout=self._load_wait)
        if not self._encoding.done():
            return None
        exc = self._encoding.exception()
        if exc is not None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "semcache: tiktoken encoding unavailable (%s: %s); cutting long inputs "
                    "to %d UTF-8 bytes instead",
                    type(exc).__name__,
                    exc,
                    self.max_tokens,
                )
            return None
        return self._encoding.result()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        """Cut each text to the limit (blocking: call it off the event loop)."""
        encoding = self.encoding()
        return [self._cut(t, encoding) for t in texts]

    def _cut(self, text: str, encoding: Any | None) -> str:
        raw = text.encode("utf-8")
        if len(raw) <= self.max_tokens:
            return text
        if encoding is None:
            return raw[: self.max_tokens].decode("utf-8", errors="ignore")
        tokens = encoding.encode_ordinary(text)  # user text: special-token names are plain text
        if len(tokens) <= self.max_tokens:
            return text
        # A cut can split a character's bytes; drop the partial character.
        cut: bytes = encoding.decode_bytes(tokens[: self.max_tokens])
        return cut.decode("utf-8", errors="ignore")
