"""The usage an upstream reports, read from the recorded answer, streamed or not."""

from __future__ import annotations

import gzip
import json

import pytest

from semcache.http.responses import StoredResponse
from semcache.http.usage import Usage, usage_of

JSON = (("content-type", "application/json"),)
SSE = (("content-type", "text/event-stream"),)
NDJSON = (("content-type", "application/x-ndjson"),)


def sse(*events: tuple[str | None, object]) -> bytes:
    out = b""
    for name, data in events:
        if name:
            out += f"event: {name}\n".encode()
        out += f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()
    return out


def read(headers: tuple[tuple[str, str], ...], body: bytes, streamed: bool = False) -> Usage | None:
    return usage_of(StoredResponse(200, headers, body, streamed))


def test_openai_chat_json() -> None:
    body = {
        "model": "gpt-4o-mini-2024-07-18",
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    }
    assert read(JSON, json.dumps(body).encode()) == Usage(9, 4, "gpt-4o-mini-2024-07-18")


def test_openai_chat_stream_reads_the_last_chunk_with_usage() -> None:
    chunk = {"model": "gpt-4o", "choices": [{"delta": {"content": "hi"}}], "usage": None}
    last = {
        "model": "gpt-4o",
        "choices": [],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7},
    }
    body = sse((None, chunk), (None, chunk), (None, last), (None, "[DONE]"))
    assert read(SSE, body, True) == Usage(20, 7, "gpt-4o")


def test_openai_stream_without_include_usage_reports_none() -> None:
    chunk = {"model": "gpt-4o", "choices": [{"delta": {"content": "hi"}}]}
    assert read(SSE, sse((None, chunk), (None, "[DONE]")), True) is None


def test_openai_responses_json_and_stream() -> None:
    body = {
        "model": "gpt-4.1",
        "usage": {"input_tokens": 30, "output_tokens": 5, "total_tokens": 35},
    }
    assert read(JSON, json.dumps(body).encode()) == Usage(30, 5, "gpt-4.1")
    stream = sse(
        (
            "response.created",
            {"type": "response.created", "response": {"model": "gpt-4.1", "usage": None}},
        ),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "x"}),
        (
            "response.completed",
            {
                "type": "response.completed",
                "response": {"model": "gpt-4.1", "usage": {"input_tokens": 30, "output_tokens": 6}},
            },
        ),
    )
    assert read(SSE, stream, True) == Usage(30, 6, "gpt-4.1")


def test_anthropic_json_counts_cached_input() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "output_tokens": 8},
    }
    assert read(JSON, json.dumps(body).encode()) == Usage(110, 8, "claude-sonnet-4-5")


@pytest.mark.parametrize(
    "delta",
    [
        {"output_tokens": 15},
        # Some versions repeat the input counts in message_delta, as zero or in full.
        {"input_tokens": 0, "output_tokens": 15},
        {"input_tokens": 25, "output_tokens": 15},
    ],
)
def test_anthropic_stream_input_from_message_start_output_from_message_delta(
    delta: dict[str, int],
) -> None:
    stream = sse(
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "model": "claude-3-5-haiku",
                    "usage": {"input_tokens": 25, "output_tokens": 1},
                },
            },
        ),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "a"}}),
        ("message_delta", {"type": "message_delta", "usage": delta}),
        ("message_stop", {"type": "message_stop"}),
    )
    assert read(SSE, stream, True) == Usage(25, 15, "claude-3-5-haiku")


def test_ollama_json_and_ndjson_stream() -> None:
    body = {"model": "llama3:8b", "done": True, "prompt_eval_count": 26, "eval_count": 290}
    assert read(JSON, json.dumps(body).encode()) == Usage(26, 290, "llama3:8b")
    lines = [
        {"model": "llama3:8b", "response": "The", "done": False},
        {"model": "llama3:8b", "response": " sky", "done": False},
        {
            "model": "llama3:8b",
            "response": "",
            "done": True,
            "prompt_eval_count": 26,
            "eval_count": 2,
        },
    ]
    stream = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    assert read(NDJSON, stream, True) == Usage(26, 2, "llama3:8b")


def test_gemini_usage_metadata() -> None:
    body = {
        "modelVersion": "gemini-2.0-flash",
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9, "totalTokenCount": 14},
    }
    assert read(JSON, json.dumps(body).encode()) == Usage(5, 9, "gemini-2.0-flash")


def test_compressed_answers_are_read_decoded() -> None:
    body = gzip.compress(
        json.dumps({"usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode()
    )
    headers = (*JSON, ("content-encoding", "gzip"))
    assert read(headers, body) == Usage(3, 2, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"usage": {"prompt_tokens": "many"}}',
        b'{"usage": {"prompt_tokens": -1}}',
        b"[1, 2]",
    ],
)
def test_no_usage_or_broken_bodies_report_none(body: bytes) -> None:
    assert read(JSON, body) is None


def test_metadata_round_trip() -> None:
    usage = Usage(12, 5, "gpt-4o")
    assert Usage.from_metadata(json.loads(json.dumps(usage.as_metadata()))) == usage
    assert Usage.from_metadata(None) is None
    assert Usage.from_metadata({"in": True, "out": 1}) is None
