"""Find the text to embed in a JSON request body: the last user turn, or query/prompt/input.

Understands plain ``{"query"|"prompt"|"input": ...}`` bodies, OpenAI Chat Completions
(``messages`` with string or content-part content), the OpenAI Responses API (``input``
as a string or a list of items, ``instructions``), and Anthropic Messages (``system``,
``messages`` with text blocks). Everything else in the body stays out of the embedded
text and goes to the partition instead (see :mod:`semcache.http.partition`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTEXT_PLACEHOLDER",
    "QUERY_FIELDS",
    "QUERY_PLACEHOLDER",
    "Extraction",
    "default_extract_model",
    "default_extract_query",
    "extract",
    "mask_text",
]

QUERY_FIELDS = ("query", "prompt", "input", "messages")
"""Top-level fields searched for the question, in this order."""

QUERY_PLACEHOLDER = "\x00semcache:query\x00"
"""Stands in for the question in the partition, so only the rest of the body must match."""

CONTEXT_PLACEHOLDER = "\x00semcache:context\x00"
"""Stands in for the earlier turns when they are matched as context, not in the partition."""

_INSTRUCTION_ROLES = frozenset({"system", "developer"})

_TEXT_PART_TYPES = frozenset({"text", "input_text"})


@dataclass(frozen=True, slots=True)
class Extraction:
    """The question found in a body.

    ``rest`` is the body with the question's text replaced by :data:`QUERY_PLACEHOLDER`:
    the model, system prompt, earlier turns, images and parameters all stay in it.
    ``source`` names the field or format it came from (``query``, ``prompt``,
    ``input``, ``input_items``, ``messages``).

    For conversations, ``context`` renders the earlier turns (everything before the
    last user turn except system/developer instructions) as text, and
    ``rest_without_context`` is ``rest`` with those turns taken out: what the partition
    holds when the cache matches the earlier turns (the ``turns`` and ``semantic`` context
    modes) instead of the partition.
    """

    query: str
    rest: Any
    source: str
    context: str | None = None
    rest_without_context: Any = None


def extract(body: Any) -> Extraction | None:
    """The question in ``body`` (parsed JSON), or ``None`` when there is none."""
    if not isinstance(body, Mapping):
        return None
    for field in QUERY_FIELDS:
        if field not in body:
            continue
        value = body[field]
        turn: _Turn | None = None
        source = field
        if field == "messages" and isinstance(value, list):
            turn = _last_user_turn(value)
        elif field == "input" and isinstance(value, list) and not _all_strings(value):
            turn, source = _last_user_turn(value), "input_items"
        else:
            plain = _plain_text(value)
            if plain is not None:
                turn = _Turn(plain[0], plain[1], 0, [])
        if turn is None or not turn.text.strip():
            continue
        rest = {**body, field: turn.masked}
        if not turn.earlier:
            return Extraction(turn.text, rest, source, None, rest)
        # One placeholder for each run of earlier turns: how many there were is for the
        # context matching to weigh (chatter adds turns), not a partition of its own.
        without: list[Any] = []
        for i, item in enumerate(turn.masked):
            if i not in turn.earlier:
                without.append(item)
            elif not without or without[-1] is not CONTEXT_PLACEHOLDER:
                without.append(CONTEXT_PLACEHOLDER)
        context = "\n".join(_render(turn.masked[i]) for i in turn.earlier)
        return Extraction(turn.text, rest, source, context, {**body, field: without})
    return None


def default_extract_query(request: Any, body: Any) -> str | None:
    """Default ``extract_query``: the last user turn or the query/prompt/input text.

    ``request`` (the framework's request object) is not used; it is there so custom
    extractors can wrap this one with the same signature.
    """
    found = extract(body)
    return found.query if found is not None else None


def default_extract_model(request: Any, body: Any) -> str | None:
    """Default ``extract_model``: the body's ``model`` field when it is a string."""
    if isinstance(body, Mapping):
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
    return None


def mask_text(value: Any, text: str) -> Any:
    """``value`` with every string equal to ``text`` replaced by the placeholder.

    Used for custom extractors, whose question may sit anywhere in the body.
    """
    if isinstance(value, str):
        return QUERY_PLACEHOLDER if value == text else value
    if isinstance(value, Mapping):
        return {k: mask_text(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_text(v, text) for v in value]
    return value


def _all_strings(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(i, str) for i in items)


def _plain_text(value: Any) -> tuple[str, Any] | None:
    # A string, or a list of strings (legacy batched prompts): the whole of it is the question.
    if isinstance(value, str):
        return value, QUERY_PLACEHOLDER
    if isinstance(value, list) and _all_strings(value):
        # One placeholder a prompt: a batch of two prompts is not one prompt holding
        # both lines, though the text is the same.
        return "\n".join(value), [QUERY_PLACEHOLDER] * len(value)
    return None


@dataclass(frozen=True, slots=True)
class _Turn:
    text: str
    masked: Any  # the field's value with the question masked
    index: int
    earlier: list[int]  # indexes of the earlier conversation turns


def _last_user_turn(items: list[Any]) -> _Turn | None:
    """The last user message's text, and the list with that text masked.

    Only the last user turn counts: when it carries no text (an image alone, tool
    results) there is no question, rather than an earlier turn standing in for it.
    """
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if not isinstance(item, Mapping) or item.get("role") != "user":
            continue
        if item.get("type", "message") != "message":
            continue
        found = _content_text(item.get("content"))
        if found is None:
            return None
        text, masked_content = found
        masked = list(items)
        masked[index] = {**item, "content": masked_content}
        earlier = [
            i
            for i in range(index)
            if not (isinstance(items[i], Mapping) and items[i].get("role") in _INSTRUCTION_ROLES)
        ]
        return _Turn(text, masked, index, earlier)
    return None


def _render(item: Any) -> str:
    """One earlier turn as text: ``role: text``, anything not text as canonical JSON."""
    if not (isinstance(item, Mapping) and isinstance(item.get("role"), str)):
        return _json(item)
    content = item.get("content")
    if isinstance(content, list):
        pieces = [
            part["text"]
            if isinstance(part, Mapping)
            and part.get("type") in _TEXT_PART_TYPES
            and isinstance(part.get("text"), str)
            else _json(part)
            for part in content
        ]
    else:
        pieces = [content if isinstance(content, str) else _json(content)]
    extra = {k: v for k, v in item.items() if k not in ("role", "content", "type")}
    if extra:  # tool calls, names...
        pieces.append(_json(extra))
    return f"{item['role']}: " + " ".join(p for p in pieces if p)


def _json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _content_text(content: Any) -> tuple[str, Any] | None:
    if isinstance(content, str):
        return content, QUERY_PLACEHOLDER
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    masked: list[Any] = []
    for part in content:
        if (
            isinstance(part, Mapping)
            and part.get("type") in _TEXT_PART_TYPES
            and isinstance(part.get("text"), str)
        ):
            texts.append(part["text"])
            masked.append({**part, "text": QUERY_PLACEHOLDER})
        else:
            masked.append(part)  # images, files, tool results: they change the answer
    if not texts:
        return None
    if len(content) == 1:
        # One text part: the same as string content (``"content": "..."`` is shorthand
        # for it). Several keep their shape: their joined text could also be one part.
        return texts[0], QUERY_PLACEHOLDER
    return "\n".join(texts), masked
