"""Is a recorded answer a complete, successful one? Errors sent with a 200 are not stored.

The cache stores only bodies it can read and judge:

- ``application/json`` and ``application/*+json`` (not ``application/problem+json``):
  a JSON document without a top-level ``"error"`` (``null`` and ``false`` count as
  none: the Responses API sends ``"error": null``) and not ``{"type": "error"}``
  (Anthropic); in a top-level array (Gemini's ``streamGenerateContent``), no element
  with one either;
- ``text/event-stream``: no ``event: error`` and no ``data:`` whose JSON has a top-level
  ``"error"`` or ``"type": "error"`` anywhere in it, and its last event is the terminal
  event of a known protocol: ``data: [DONE]`` (OpenAI chat/completions, vLLM and the
  other OpenAI-compatible servers), ``message_stop`` (Anthropic), ``response.completed``
  (OpenAI Responses API), or a chunk whose candidates carry a ``finishReason`` (Gemini).
  An event counts once its blank line arrived, as in the SSE specification;
- ``application/x-ndjson`` (and ``application/ndjson``, ``application/jsonl``): every line
  JSON, none with an ``"error"``, the last one ``"done": true`` (Ollama);
- ``text/plain``: any non-empty body.

Any other content type (HTML from a gateway, images, a missing ``Content-Type``) and any
empty body are not stored. A compressed body (``gzip``, ``deflate``; ``br`` when the
``brotli`` package is installed) is judged on its decoded bytes; one that cannot be
decoded is not stored.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["body_not_storable", "content_type_not_storable"]

Headers = Sequence[tuple[str, str]]

_JSON = "application/json"
_SSE = "text/event-stream"
_NDJSON = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
_TEXT = "text/plain"
_NOT_JSON = frozenset({"application/problem+json"})

_DONE = "[DONE]"
_TERMINAL_TYPES = frozenset({"message_stop", "response.completed"})
_IGNORED_EVENTS = frozenset({"ping"})  # Anthropic keep-alives, may come at any time


def _media(headers: Headers) -> str:
    for name, value in headers:
        if name == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


def _is_json(media: str) -> bool:
    if media in _NOT_JSON:
        return False
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


def content_type_not_storable(headers: Headers) -> str | None:
    """``"content-type"`` when the cache cannot judge this kind of body, else ``None``."""
    media = _media(headers)
    if _is_json(media) or media in (_SSE, _TEXT) or media in _NDJSON:
        return None
    return "content-type"


def body_not_storable(headers: Headers, body: bytes, max_bytes: int) -> str | None:
    """Why this complete body must not be stored (an error, unfinished...), or ``None``.

    ``headers`` are lower-case names; ``max_bytes`` bounds the decoded body.
    """
    if not body:
        return "empty body"
    reason = content_type_not_storable(headers)
    if reason is not None:
        return reason
    decoded = _decode(headers, body, max_bytes)
    if decoded is None:
        return "unreadable content-encoding"
    if not decoded.strip():
        return "empty body"
    media = _media(headers)
    if media == _SSE:
        return _sse_not_storable(decoded)
    if media in _NDJSON:
        return _ndjson_not_storable(decoded)
    if media == _TEXT:
        return None
    return _json_not_storable(decoded)


def _has_error(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    error = value.get("error")
    return (error is not None and error is not False) or value.get("type") == "error"


def _json_not_storable(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return "unreadable JSON"
    items = document if isinstance(document, list) else [document]
    if any(_has_error(item) for item in items):
        return "error in body"
    return None


def _ndjson_not_storable(body: bytes) -> str | None:
    last: Any = None
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            last = json.loads(line)
        except ValueError:
            return "unreadable JSON line"
        if _has_error(last):
            return "error in stream"
    if isinstance(last, dict) and last.get("done") is True:
        return None
    return "stream did not finish"


def _sse_events(body: bytes) -> list[tuple[str, str | None]]:
    """The dispatched events of an SSE body: ``(event name, data)``; comments left out."""
    text = body.decode("utf-8", errors="replace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    events: list[tuple[str, str | None]] = []
    name = ""
    data: list[str] = []
    for line in lines[:-1]:  # the part after the last newline is an unfinished line
        if not line:
            if name or data:
                events.append((name, "\n".join(data) if data else None))
            name, data = "", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    # Whatever follows the last blank line was never dispatched.
    return events


def _sse_not_storable(body: bytes) -> str | None:
    last: tuple[str, Any] | None = None
    for name, data in _sse_events(body):
        if name == "error":
            return "error event"
        if name in _IGNORED_EVENTS:
            continue
        parsed: Any = None
        if data is not None and data != _DONE:
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            if _has_error(parsed):
                return "error in stream"
        last = (name, data if data == _DONE else parsed)
    if last is None:
        return "stream did not finish"
    name, data = last
    if data == _DONE or name in _TERMINAL_TYPES:
        return None
    if isinstance(data, dict):
        if data.get("type") in _TERMINAL_TYPES:
            return None
        candidates = data.get("candidates")
        if (
            isinstance(candidates, list)
            and candidates
            and all(isinstance(c, dict) and c.get("finishReason") for c in candidates)
        ):
            return None
    return "stream did not finish"


def _decode(headers: Headers, body: bytes, max_bytes: int) -> bytes | None:
    codings = [
        coding.strip().lower()
        for name, value in headers
        if name == "content-encoding"
        for coding in value.split(",")
        if coding.strip()
    ]
    for coding in reversed(codings):  # applied in order listed: undo the last first
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            decoded = _inflate(body, 16 + zlib.MAX_WBITS, max_bytes)
        elif coding == "deflate":
            decoded = _inflate(body, zlib.MAX_WBITS, max_bytes)
            if decoded is None:
                decoded = _inflate(body, -zlib.MAX_WBITS, max_bytes)
        elif coding == "br":
            decoded = _unbrotli(body, max_bytes)
        else:
            return None
        if decoded is None:
            return None
        body = decoded
    return body


def _inflate(data: bytes, wbits: int, max_bytes: int) -> bytes | None:
    """Decompress every member of ``data``; ``None`` when broken or over ``max_bytes``."""
    out = bytearray()
    try:
        while data:
            engine = zlib.decompressobj(wbits)
            out += engine.decompress(data, max_bytes + 1 - len(out))
            if len(out) > max_bytes or engine.unconsumed_tail:
                return None
            if not engine.eof:
                return None  # truncated
            data = engine.unused_data
            if wbits < 0:
                break
    except zlib.error:
        return None
    return bytes(out)


def _unbrotli(data: bytes, max_bytes: int) -> bytes | None:
    try:
        import brotli  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        out = brotli.decompress(data)
    except Exception:
        return None
    return out if isinstance(out, bytes) and len(out) <= max_bytes else None
