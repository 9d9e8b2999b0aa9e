"""Only complete, successful answers are stored: errors sent with a 200 are not."""

import gzip
import json
import zlib

import pytest

from semcache.http import ResponseRecorder, body_not_storable

JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream; charset=utf-8")]
NDJSON = [("content-type", "application/x-ndjson")]
LIMIT = 1 << 20


def sse(*events):
    return "".join(f"{event}\n\n" for event in events).encode()


def data(obj):
    return "data: " + json.dumps(obj)


OPENAI_CHUNK = data({"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]})
ANTHROPIC_OK = sse(
    'event: message_start\ndata: {"type": "message_start", "message": {}}',
    'event: ping\ndata: {"type": "ping"}',
    'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"text": "hi"}}',
    'event: message_delta\ndata: {"type": "message_delta"}',
    'event: message_stop\ndata: {"type": "message_stop"}',
)
RESPONSES_OK = sse(
    'event: response.created\ndata: {"type": "response.created"}',
    'event: response.output_text.delta\ndata: {"type": "response.output_text.delta"}',
    'event: response.completed\ndata: {"type": "response.completed", '
    '"response": {"status": "completed", "error": null}}',
)
GEMINI_OK = sse(
    data({"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}),
    data({"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}]}),
)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (JSON, b'{"choices": [{"message": {"content": "hi"}}]}'),
        (JSON, b'{"object": "response", "status": "completed", "error": null}'),
        (JSON, b'{"ok": true, "error": false}'),
        (JSON, b'[{"candidates": []}, {"candidates": []}]'),
        ([("content-type", "application/vnd.api+json")], b'{"data": 1}'),
        ([("content-type", "text/plain; charset=utf-8")], b"hello"),
        (SSE, sse(OPENAI_CHUNK, "data: [DONE]")),
        (SSE, sse(": keep-alive", OPENAI_CHUNK, "data: [DONE]").replace(b"\n", b"\r\n")),
        (SSE, ANTHROPIC_OK),
        (SSE, RESPONSES_OK),
        (SSE, GEMINI_OK),
        (NDJSON, b'{"response": "hi", "done": false}\n{"response": "", "done": true}\n'),
        ([*JSON, ("content-encoding", "gzip")], gzip.compress(b'{"a": 1}')),
        ([*JSON, ("content-encoding", "deflate")], zlib.compress(b'{"a": 1}')),
        ([*SSE, ("content-encoding", "gzip")], gzip.compress(sse(OPENAI_CHUNK, "data: [DONE]"))),
    ],
)
def test_complete_successful_answers_are_stored(headers, body):
    assert body_not_storable(headers, body, LIMIT) is None


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        # Errors in a 200 JSON body (OpenAI, Anthropic, Ollama, Gemini shapes).
        (JSON, b'{"error": {"message": "overloaded", "type": "server_error"}}', "error in body"),
        (JSON, b'{"type": "error", "error": {"type": "overloaded_error"}}', "error in body"),
        (JSON, b'{"error": "model not found"}', "error in body"),
        (JSON, b'[{"candidates": []}, {"error": {"code": 500}}]', "error in body"),
        (JSON, b"", "empty body"),
        (JSON, b"  \n", "empty body"),
        (JSON, b'{"choices": [', "unreadable JSON"),
        ([("content-type", "text/plain")], b"", "empty body"),
        ([("content-type", "text/html")], b"<html>Bad gateway</html>", "content-type"),
        ([("content-type", "application/problem+json")], b'{"title": "x"}', "content-type"),
        ([], b'{"a": 1}', "content-type"),
        # Error events inside a 200 stream.
        (
            SSE,
            sse(
                'event: message_start\ndata: {"type": "message_start"}',
                'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"}}',
            ),
            "error event",
        ),
        # vLLM: an error data line, then [DONE].
        (
            SSE,
            sse(OPENAI_CHUNK, data({"error": {"message": "boom"}}), "data: [DONE]"),
            "error in stream",
        ),
        (SSE, sse('data: {"type": "error", "code": "server_error"}'), "error in stream"),
        # Streams that did not end with their protocol's terminal event.
        (SSE, sse(OPENAI_CHUNK), "stream did not finish"),
        (SSE, sse(OPENAI_CHUNK) + b"data: [DONE]", "stream did not finish"),  # no blank line
        (SSE, ANTHROPIC_OK.rsplit(b"event: message_stop", 1)[0], "stream did not finish"),
        (
            SSE,
            sse('event: response.failed\ndata: {"type": "response.failed"}'),
            "stream did not finish",
        ),
        (SSE, GEMINI_OK.rsplit(b"data: ", 1)[0], "stream did not finish"),
        (SSE, sse(": only a comment"), "stream did not finish"),
        (NDJSON, b'{"response": "hi", "done": false}\n', "stream did not finish"),
        (NDJSON, b'{"response": "hi", "done": false}\n{"error": "x"}\n', "error in stream"),
        (NDJSON, b'{"response": "hi"}\nnot json\n', "unreadable JSON line"),
        # Bodies that cannot be decoded are not judged, so not stored.
        ([*JSON, ("content-encoding", "gzip")], b"not gzip", "unreadable content-encoding"),
        (
            [*JSON, ("content-encoding", "gzip")],
            gzip.compress(b'{"a": 1}')[:-6],
            "unreadable content-encoding",
        ),
        ([*JSON, ("content-encoding", "compress")], b"x", "unreadable content-encoding"),
        (
            [*JSON, ("content-encoding", "gzip")],
            gzip.compress(b'{"error": "x"}'),
            "error in body",
        ),
    ],
)
def test_errors_and_unfinished_answers_are_not_stored(headers, body, reason):
    assert body_not_storable(headers, body, LIMIT) == reason


def test_decoded_size_is_bounded():
    bomb = gzip.compress(b'{"a": "' + b"x" * 200_000 + b'"}')
    headers = [*JSON, ("content-encoding", "gzip")]
    assert body_not_storable(headers, bomb, 100_000) == "unreadable content-encoding"
    assert body_not_storable(headers, bomb, 300_000) is None


@pytest.mark.parametrize(
    ("status", "headers", "chunks", "stored"),
    [
        (200, JSON, [b'{"a": ', b"1}"], True),
        (203, JSON, [b'{"a": 1}'], True),
        (201, JSON, [b'{"a": 1}'], False),
        (202, JSON, [b'{"a": 1}'], False),
        (204, [], [], False),
        (200, JSON, [b'{"error": ', b'{"message": "x"}}'], False),
        (200, JSON, [], False),
        (200, [("content-type", "text/html")], [b"<html></html>"], False),
        (200, [*JSON, ("vary", "Authorization")], [b'{"a": 1}'], False),
        (200, SSE, [OPENAI_CHUNK.encode() + b"\n\n", b"data: [DONE]\n\n"], True),
        (200, SSE, [OPENAI_CHUNK.encode() + b"\n\n"], False),
    ],
)
def test_recorder_stores_only_complete_successful_answers(status, headers, chunks, stored):
    recorder = ResponseRecorder()
    recorder.start(status, headers)
    for chunk in chunks:
        recorder.add(chunk)
    result = recorder.finish()
    assert (result is not None) is stored
    assert (recorder.reason is None) is stored
