"""The text of an answer, read out of the common LLM formats."""

from __future__ import annotations

import gzip
import json

from semcache.audit import answer_text
from semcache.http import StoredResponse


def response(body: bytes, content_type: str, **headers: str) -> StoredResponse:
    pairs = (("content-type", content_type), *headers.items())
    return StoredResponse(200, pairs, body, streamed="stream" in content_type)


def test_openai_chat_whole_and_streamed() -> None:
    whole = {"choices": [{"message": {"role": "assistant", "content": "Three days."}}]}
    assert answer_text(response(json.dumps(whole).encode(), "application/json")) == "Three days."
    events = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "Three "}}]},
        {"choices": [{"delta": {"content": "days."}}]},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    assert answer_text(response(sse.encode(), "text/event-stream")) == "Three days."


def test_completions_responses_anthropic_ollama_gemini() -> None:
    cases = [
        {"choices": [{"text": "A"}]},
        {"output": [{"type": "message", "content": [{"type": "output_text", "text": "A"}]}]},
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "A"}]},
        {"model": "llama3", "message": {"role": "assistant", "content": "A"}, "done": True},
        {"model": "llama3", "response": "A", "done": True},
        {"candidates": [{"content": {"parts": [{"text": "A"}]}}]},
    ]
    for case in cases:
        assert answer_text(response(json.dumps(case).encode(), "application/json")) == "A", case


def test_streamed_anthropic_and_ollama() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"content": []}}),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "Hi "}}),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "there"}}),
    ]
    sse = "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events)
    assert answer_text(response(sse.encode(), "text/event-stream")) == "Hi there"
    lines = [{"message": {"content": "Hi "}}, {"message": {"content": "there"}, "done": True}]
    ndjson = "\n".join(json.dumps(line) for line in lines).encode()
    assert answer_text(response(ndjson, "application/x-ndjson")) == "Hi there"


def test_compressed_and_other_bodies() -> None:
    whole = json.dumps({"choices": [{"message": {"content": "Zipped."}}]}).encode()
    zipped = response(gzip.compress(whole), "application/json", **{"content-encoding": "gzip"})
    assert answer_text(zipped) == "Zipped."
    assert answer_text(response(b"plain words", "text/plain")) == "plain words"
    assert answer_text(response(b'{"result": 42}', "application/json")) == '{"result": 42}'
    assert answer_text(response(b"x", "text/plain", **{"content-encoding": "zstd-x"})) is None
