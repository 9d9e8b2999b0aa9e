"""The token usage an upstream reports in its answer: what a later hit saves.

Read from a recorded response, streamed or not: OpenAI chat and completions
(``usage.prompt_tokens`` / ``completion_tokens``; streamed, the last chunk when the
client asked for ``stream_options.include_usage``), OpenAI Responses (``usage`` or the
``response.completed`` event's ``response.usage``), Anthropic Messages (``usage``;
streamed, ``message_start`` then the cumulative ``message_delta``), Ollama
(``prompt_eval_count`` / ``eval_count``, the last line of a stream) and Gemini
(``usageMetadata``). The model the upstream names in its answer comes along.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from semcache.http.bodies import _decode, _sse_events
from semcache.http.responses import StoredResponse

__all__ = ["MAX_USAGE_BYTES", "Usage", "usage_of"]

MAX_USAGE_BYTES = 4 << 20
"""Decoded bodies larger than this are not read for usage (a store, not a parser)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one answer: ``input`` (prompt, cached input included) and ``output``."""

    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_metadata(self) -> dict[str, Any]:
        """The compact form kept in an entry's metadata."""
        out: dict[str, Any] = {"in": self.input_tokens, "out": self.output_tokens}
        if self.model:
            out["model"] = self.model
        return out

    @classmethod
    def from_metadata(cls, value: object) -> Usage | None:
        """Inverse of :meth:`as_metadata`; ``None`` for anything else."""
        if not isinstance(value, Mapping):
            return None
        tokens_in, tokens_out = value.get("in"), value.get("out")
        if not _count(tokens_in) or not _count(tokens_out):
            return None
        model = value.get("model")
        return cls(tokens_in, tokens_out, model if isinstance(model, str) else None)


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Fold:
    """Usage seen so far in a stream: later reports win (they are cumulative)."""

    def __init__(self) -> None:
        self.input: int | None = None
        self.output: int | None = None
        self.model: str | None = None

    def add(self, obj: Any) -> None:
        if not isinstance(obj, Mapping):
            return
        model = obj.get("model") or obj.get("modelVersion")
        if isinstance(model, str) and model:
            self.model = model
        for nested in ("response", "message"):  # Responses events, Anthropic message_start
            inner = obj.get(nested)
            if isinstance(inner, Mapping):
                self.add(inner)
        usage = obj.get("usage")
        if isinstance(usage, Mapping):
            self._usage(usage)
        meta = obj.get("usageMetadata")  # Gemini
        if isinstance(meta, Mapping):
            self._set(
                meta.get("promptTokenCount"),
                _sum(meta, "candidatesTokenCount", "thoughtsTokenCount"),
            )
        if "eval_count" in obj or "prompt_eval_count" in obj:  # Ollama
            self._set(obj.get("prompt_eval_count"), obj.get("eval_count"))

    def _usage(self, usage: Mapping[str, Any]) -> None:
        if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI chat, completions
            self._set(usage.get("prompt_tokens"), usage.get("completion_tokens"))
            return
        # Responses and Anthropic; Anthropic counts cached input apart from input_tokens.
        tokens_in = _sum(
            usage, "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"
        )
        self._set(tokens_in, usage.get("output_tokens"))

    def _set(self, tokens_in: object, tokens_out: object) -> None:
        # Anthropic's message_delta reports output only: the input of message_start stays.
        if _count(tokens_in) and (tokens_in or self.input is None):
            self.input = tokens_in
        if _count(tokens_out):
            self.output = tokens_out

    def result(self) -> Usage | None:
        if self.input is None and self.output is None:
            return None
        return Usage(self.input or 0, self.output or 0, self.model)


def _sum(mapping: Mapping[str, Any], *keys: str) -> int | None:
    values = [mapping.get(k) for k in keys]
    counted = [v for v in values if _count(v)]
    return sum(counted) if counted else None


def usage_of(response: StoredResponse) -> Usage | None:
    """The usage ``response`` reports (JSON, SSE or NDJSON, compressed or not), or ``None``."""
    body = _decode(response.headers, response.body, MAX_USAGE_BYTES)
    if not body:
        return None
    media = (response.content_type or "").split(";", 1)[0].strip().lower()
    fold = _Fold()
    try:
        if media == "text/event-stream":
            for _, data in _sse_events(body):
                if data and data.startswith("{"):
                    fold.add(json.loads(data))
        elif (
            "ndjson" in media
            or "jsonl" in media
            or (response.streamed and not body.lstrip().startswith(b"["))
        ):
            for line in body.splitlines():
                if line.strip():
                    fold.add(json.loads(line))
        else:
            parsed = json.loads(body)
            for obj in parsed if isinstance(parsed, list) else [parsed]:  # Gemini may send a list
                fold.add(obj)
    except (ValueError, RecursionError):
        return fold.result()
    return fold.result()
