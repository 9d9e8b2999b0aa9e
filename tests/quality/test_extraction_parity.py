"""The evaluation splits a request exactly as the HTTP cache does.

Quality numbers are worth something only if they measure production's extraction: the
same question, the same earlier turns, and the same partition boundaries, for every
request format the cache understands and in both context modes.
"""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import pytest

from semcache import Settings
from semcache.evaluation import EvaluationError, Side, parse_pair, split_conversation
from semcache.http import CachePlan, HttpCachePolicy, HttpRequest

MODES = ("exact", "semantic")

_OSLO = [
    {"role": "user", "content": "I live in Oslo."},
    {"role": "assistant", "content": "Noted."},
]
_ROME = [
    {"role": "user", "content": "I live in Rome."},
    {"role": "assistant", "content": "Noted."},
]


def _chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": list(messages), **extra}


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


BODIES: dict[str, dict[str, Any]] = {
    # Chat Completions
    "chat": _chat(_user("What should I wear today?")),
    "chat other question": _chat(_user("How do I reset my password?")),
    "chat text parts": _chat(
        {"role": "user", "content": [{"type": "text", "text": "What should I wear today?"}]}
    ),
    "chat text and image": _chat(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        }
    ),
    "chat system": _chat({"role": "system", "content": "Be brief."}, _user("What to wear?")),
    "chat other system": _chat({"role": "system", "content": "Be wordy."}, _user("What to wear?")),
    "chat developer": _chat({"role": "developer", "content": "Be brief."}, _user("What to wear?")),
    "chat ignored field": _chat(_user("What should I wear today?"), user="u-42"),
    "chat stream": _chat(_user("What should I wear today?"), stream=True),
    "chat other model": {**_chat(_user("What should I wear today?")), "model": "gpt-4o"},
    "chat temperature": _chat(_user("What should I wear today?"), temperature=0.2),
    "follow-up oslo": _chat(*_OSLO, _user("What should I wear today?")),
    "follow-up rome": _chat(*_ROME, _user("What should I wear today?")),
    "follow-up oslo, system": _chat(
        {"role": "system", "content": "Be brief."}, *_OSLO, _user("What should I wear today?")
    ),
    "follow-up oslo, two turns": _chat(*_OSLO, *_ROME, _user("What should I wear today?")),
    "follow-up with tool call": _chat(
        _user("Weather in Oslo?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        _user("Do I need an umbrella?"),
    ),
    # Responses API
    "responses string": {"model": "gpt-4o-mini", "input": "What should I wear today?"},
    "responses instructions": {
        "model": "gpt-4o-mini",
        "instructions": "Be brief.",
        "input": "What should I wear today?",
    },
    "responses items": {
        "model": "gpt-4o-mini",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "I live in Oslo."}]},
            {"type": "message", "role": "assistant", "content": "Noted."},
            {"role": "user", "content": [{"type": "input_text", "text": "What to wear?"}]},
        ],
    },
    "responses items rome": {
        "model": "gpt-4o-mini",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "I live in Rome."}]},
            {"type": "message", "role": "assistant", "content": "Noted."},
            {"role": "user", "content": [{"type": "input_text", "text": "What to wear?"}]},
        ],
    },
    # Anthropic Messages
    "anthropic": {
        "model": "claude-sonnet-4",
        "max_tokens": 256,
        "system": "Be brief.",
        "messages": [_user("What should I wear today?")],
    },
    "anthropic blocks": {
        "model": "claude-sonnet-4",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "I live in Oslo."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
            {"role": "user", "content": [{"type": "text", "text": "What should I wear today?"}]},
        ],
    },
    "anthropic other system": {
        "model": "claude-sonnet-4",
        "max_tokens": 256,
        "system": "Be wordy.",
        "messages": [_user("What should I wear today?")],
    },
    # Plain fields
    "query": {"query": "What should I wear today?"},
    "prompt": {"model": "gpt-3.5-turbo-instruct", "prompt": "What should I wear today?"},
    "prompt list": {"model": "gpt-3.5-turbo-instruct", "prompt": ["Wear what?", "Today?"]},
}


async def production(body: dict[str, Any], mode: str) -> CachePlan:
    policy = HttpCachePolicy(Settings.from_env({}, context_mode=mode))
    plan = await policy.plan(HttpRequest("POST", "/v1/any", body=json.dumps(body).encode()))
    assert isinstance(plan, CachePlan), plan
    return plan


def evaluated(body: dict[str, Any]) -> Side:
    """The body as an evaluation reads it from a pairs file."""
    return parse_pair(json.loads(json.dumps({"a": body, "b": body, "same_answer": True}))).a


@pytest.mark.parametrize("mode", MODES)
async def test_question_and_context_are_production_s(mode: str) -> None:
    for name, body in BODIES.items():
        plan = await production(body, mode)
        _, context = evaluated(body).keys(mode)
        assert (evaluated(body).query, context) == (plan.query, plan.context), name


@pytest.mark.parametrize("mode", MODES)
async def test_partitions_split_where_production_s_do(mode: str) -> None:
    plans = {name: (await production(body, mode)).partition for name, body in BODIES.items()}
    sides = {name: evaluated(body).keys(mode)[0] for name, body in BODIES.items()}
    same_somewhere = False
    for x, y in combinations(BODIES, 2):
        assert (plans[x] == plans[y]) == (sides[x] == sides[y]), (mode, x, y)
        same_somewhere |= plans[x] == plans[y]
    assert same_somewhere  # the set has pairs that share a partition, not only splits


def test_message_lists_and_strings_read_as_chat_requests() -> None:
    messages = [*_OSLO, _user("What should I wear today?")]
    as_list = parse_pair({"a": messages, "b": "What should I wear today?", "same_answer": True})
    assert as_list.a == evaluated({"messages": messages}) == split_conversation(messages)
    assert as_list.b == evaluated({"messages": [_user("What should I wear today?")]})


def test_a_request_without_a_question_is_an_error() -> None:
    for body in ({"messages": [{"role": "assistant", "content": "Hi"}]}, {"model": "m"}):
        with pytest.raises(EvaluationError, match="no question"):
            parse_pair({"a": body, "b": "x", "same_answer": False})
