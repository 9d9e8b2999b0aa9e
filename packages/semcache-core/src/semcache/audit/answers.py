"""The text of an answer, for comparing two answers by meaning rather than by bytes.

Reads the assistant's text out of the common LLM formats, whole or streamed: OpenAI
chat (``choices[].message.content`` / ``delta.content``), completions
(``choices[].text``), Responses (``output_text``, ``output[].content[].text``, text
delta events), Anthropic Messages (``content[].text`` / ``delta.text``), Ollama
(``message.content`` / ``response``) and Gemini (``candidates[].content.parts[].text``).
Any other body is compared as its decoded text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from semcache.http.bodies import _decode, _sse_events
from semcache.http.responses import StoredResponse

__all__ = ["MAX_ANSWER_BYTES", "answer_text"]

MAX_ANSWER_BYTES = 4 << 20
"""Decoded bodies larger than this are not read (no outcome)."""


def answer_text(response: StoredResponse) -> str | None:
    """The answer's text, or ``None`` when the body cannot be read."""
    body = _decode(response.headers, response.body, MAX_ANSWER_BYTES)
    if body is None:
        return None
    media = (response.content_type or "").split(";", 1)[0].strip().lower()
    try:
        if media == "text/event-stream":
            objects = [
                json.loads(data)
                for _, data in _sse_events(body)
                if data and data.lstrip().startswith("{")
            ]
        elif (
            "ndjson" in media
            or "jsonl" in media
            or (response.streamed and body.lstrip().startswith(b"{"))
        ):
            objects = [json.loads(line) for line in body.splitlines() if line.strip()]
        elif "json" in media or body.lstrip()[:1] in (b"{", b"["):
            parsed = json.loads(body)
            objects = parsed if isinstance(parsed, list) else [parsed]
        else:
            return body.decode("utf-8", errors="replace")
    except (ValueError, RecursionError):
        return body.decode("utf-8", errors="replace")
    parts = [text for obj in objects if isinstance(obj, dict) for text in _texts(obj)]
    if parts:
        return "".join(parts)
    return body.decode("utf-8", errors="replace")


def _texts(obj: dict[str, Any]) -> Iterator[str]:
    """The text pieces of one JSON object of a known LLM format."""
    for choice in _dicts(obj.get("choices")):
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict):
                yield from _content(part.get("content"))
        if isinstance(choice.get("text"), str):
            yield choice["text"]
    if isinstance(obj.get("output_text"), str):  # Responses API, whole
        yield obj["output_text"]
        return
    for item in _dicts(obj.get("output")):
        yield from _content(item.get("content"))
    if obj.get("type") == "response.output_text.delta" and isinstance(obj.get("delta"), str):
        yield obj["delta"]
    if obj.get("type") in ("message", None) or "role" in obj:
        yield from _content(obj.get("content"))  # Anthropic message
    delta = obj.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("text"), str):
        yield delta["text"]  # Anthropic stream
    message = obj.get("message")
    if isinstance(message, dict) and "choices" not in obj:
        yield from _content(message.get("content"))  # Ollama chat
    if isinstance(obj.get("response"), str):
        yield obj["response"]  # Ollama generate
    for candidate in _dicts(obj.get("candidates")):
        content = candidate.get("content")
        if isinstance(content, dict):
            yield from _content(content.get("parts"))


def _content(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        return
    for part in _dicts(value):
        if isinstance(part.get("text"), str):
            yield part["text"]


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
