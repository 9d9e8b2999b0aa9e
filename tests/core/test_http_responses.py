import pytest

from semcache.http import (
    ResponseRecorder,
    StoredResponse,
    accepts_encoding,
    is_streaming_content_type,
    response_not_cacheable,
    split_sse_events,
    storable_headers,
)

JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream; charset=utf-8")]


@pytest.mark.parametrize(
    ("status", "headers", "reason"),
    [
        (200, JSON, None),
        (203, JSON, None),
        (201, JSON, "status 201"),
        (202, JSON, "status 202"),
        (204, [], "status 204"),
        (206, JSON, "status 206"),
        (301, JSON, "status 301"),
        (404, JSON, "status 404"),
        (429, JSON, "status 429"),
        (500, JSON, "status 500"),
        (200, [*JSON, ("set-cookie", "a=b")], "set-cookie"),
        (200, [("cache-control", "private, max-age=60")], "cache-control"),
        (200, [("cache-control", "No-Store")], "cache-control"),
        (200, [*SSE, ("cache-control", "no-cache")], None),  # SSE servers send it; storable
        (200, [*JSON, ("cache-control", "public, max-age=60")], None),
        (200, [("vary", "*")], "vary"),
        (200, [*JSON, ("vary", "accept")], "vary"),
        (200, [*JSON, ("vary", "Accept-Encoding")], None),
        (200, [*JSON, ("vary", "accept-encoding"), ("vary", "cookie")], "vary"),
        (200, [*JSON, ("vary", "Origin, Accept-Encoding")], "vary"),
        (200, [("content-type", "text/html; charset=utf-8")], "content-type"),
        (200, [], "content-type"),
        (200, [("trailer", "x-checksum")], "trailers"),
    ],
)
def test_response_cacheability(status, headers, reason):
    assert response_not_cacheable(status, headers) == reason


def test_storable_headers_are_an_allowlist():
    headers = [
        ("content-type", "application/json"),
        ("content-length", "12"),
        ("date", "Mon"),
        ("server", "uvicorn"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("set-cookie", "a=b"),
        ("x-request-id", "r1"),
        ("openai-processing-ms", "12"),
        ("x-ratelimit-remaining-requests", "99"),
        ("anthropic-ratelimit-tokens-limit", "1"),
        ("x-semcache", "miss"),
        ("content-encoding", "gzip"),
        ("x-custom", "dropped"),
        ("openai-organization", "org-123"),
        ("openai-project", "proj_1"),
        ("openai-version", "2020-10-01"),
        ("anthropic-organization-id", "a1"),
        ("traceparent", "00-1-2-01"),
        ("access-control-allow-origin", "https://a.example"),
        ("vary", "accept-encoding"),
        ("cache-control", "no-cache"),
        ("content-language", "fr"),
    ]
    assert storable_headers(headers) == [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
        ("openai-version", "2020-10-01"),
        ("cache-control", "no-cache"),
        ("content-language", "fr"),
    ]


def test_replay_drops_headers_outside_the_allowlist_of_older_entries():
    old = StoredResponse(
        200,
        (("content-type", "application/json"), ("openai-organization", "org-a"), ("x-a", "1")),
        b"{}",
        False,
        100.0,
    )
    names = [k for k, _ in old.replay_headers(now=100.0)]
    assert names == ["content-type", "content-length", "age", "x-semcache"]


def test_stored_response_round_trip():
    stored = StoredResponse(
        201,
        (("content-type", "text/plain; charset=latin-1"), ("x-a", "\xe9")),
        b"\x00\n\xffbody\n",
        False,
        1000.0,
    )
    assert StoredResponse.decode(stored.encode()) == stored


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{}",
        b"SCR1",
        b"SCR1{}\n",
        b'SCR1{"s": 1, "h": [], "st": false, "t": 0}\n',
        b"SCR1not json\n",
    ],
)
def test_decode_rejects_other_payloads(payload):
    with pytest.raises((ValueError, KeyError, TypeError)):
        StoredResponse.decode(payload)


def test_replay_headers():
    plain = StoredResponse(200, (("content-type", "application/json"),), b"12345", False, 100.0)
    headers = plain.replay_headers(similarity=0.91234, now=160.5)
    assert headers == [
        ("content-type", "application/json"),
        ("content-length", "5"),
        ("age", "60"),
        ("x-semcache", "hit"),
        ("x-semcache-similarity", "0.9123"),
    ]
    streamed = StoredResponse(200, tuple(SSE), b"data: 1\n\n", True, 100.0)
    names = [k for k, _ in streamed.replay_headers(now=100.0)]
    assert "content-length" not in names and "x-semcache-similarity" not in names


def test_sse_replay_one_event_per_chunk_bytes_unchanged():
    body = b"data: a\n\nevent: x\ndata: b\r\n\r\ndata: [DONE]\n\n"
    stored = StoredResponse(200, tuple(SSE), body, True)
    assert stored.chunks() == [b"data: a\n\n", b"event: x\ndata: b\r\n\r\n", b"data: [DONE]\n\n"]
    assert b"".join(stored.chunks()) == body
    assert split_sse_events(b"data: a\n\ndata: unterminated") == [
        b"data: a\n\n",
        b"data: unterminated",
    ]
    assert split_sse_events(b"") == []


def test_other_replay_chunking():
    ndjson = StoredResponse(
        200, (("content-type", "application/x-ndjson"),), b'{"a":1}\n{"b":2}\n', True
    )
    assert ndjson.chunks() == [b'{"a":1}\n', b'{"b":2}\n']
    big = StoredResponse(200, (("content-type", "text/plain"),), b"x" * 150_000, True)
    assert [len(c) for c in big.chunks()] == [65536, 65536, 150_000 - 131072]
    assert StoredResponse(200, (), b"whole", False).chunks() == [b"whole"]
    assert StoredResponse(204, (), b"", True).chunks() == [b""]


def test_streaming_content_types():
    assert is_streaming_content_type("text/event-stream")
    assert is_streaming_content_type("Text/Event-Stream; charset=utf-8")
    assert is_streaming_content_type("application/x-ndjson")
    assert not is_streaming_content_type("application/json")
    assert not is_streaming_content_type(None)


def test_recorder_keeps_a_copy():
    recorder = ResponseRecorder()
    recorder.start(200, [*SSE, ("date", "x")])
    for chunk in (b"data: 1\n\n", b"", b"data: [DONE]\n\n"):
        recorder.add(chunk)
    stored = recorder.finish()
    assert stored is not None
    assert (stored.status, stored.body, stored.streamed) == (
        200,
        b"data: 1\n\ndata: [DONE]\n\n",
        True,
    )
    assert dict(stored.headers) == {"content-type": "text/event-stream; charset=utf-8"}


def test_recorder_streamed_when_chunked_without_length():
    recorder = ResponseRecorder()
    recorder.start(200, [("content-type", "text/plain")])
    recorder.add(b"a")
    recorder.add(b"b")
    stored = recorder.finish()
    assert stored is not None and stored.streamed
    recorder = ResponseRecorder()
    recorder.start(200, [("content-type", "text/plain"), ("content-length", "2")])
    recorder.add(b"a")
    recorder.add(b"b")
    stored = recorder.finish()
    assert stored is not None and not stored.streamed


def test_recorder_refuses():
    uncacheable = ResponseRecorder()
    uncacheable.start(500, JSON)
    uncacheable.add(b"{}")
    assert uncacheable.finish() is None and uncacheable.reason == "status 500"

    too_big = ResponseRecorder(max_bytes=4)
    too_big.start(200, JSON)
    too_big.add(b"abc")
    too_big.add(b"de")
    assert too_big.finish() is None and too_big.reason == "response too large"

    aborted = ResponseRecorder()
    aborted.start(200, JSON)
    aborted.abort("client left")
    assert aborted.finish() is None

    assert ResponseRecorder().finish() is None  # never started


@pytest.mark.parametrize(
    ("header", "coding", "ok"),
    [
        (None, "identity", True),
        (None, "gzip", False),
        ("gzip, deflate, br", "gzip", True),
        ("GZIP", "gzip", True),
        ("br", "gzip", False),
        ("gzip;q=0", "gzip", False),
        ("*", "gzip", True),
        ("*;q=0", "gzip", False),
        ("gzip;q=0.5, *;q=0", "gzip", True),
        ("identity", "", True),
        ("gzip;q=x", "gzip", False),
    ],
)
def test_accepts_encoding(header, coding, ok):
    assert accepts_encoding(header, coding) is ok


def test_vary_on_a_partitioned_request_header_is_satisfied():
    headers = [*JSON, ("vary", "Origin"), ("vary", "X-Origin, Referer")]
    assert response_not_cacheable(200, headers) == "vary"
    partitioned = {"origin", "x-origin", "referer"}
    assert response_not_cacheable(200, headers, vary_partitioned=partitioned) is None
    assert response_not_cacheable(200, [*headers, ("vary", "cookie")], vary_partitioned=partitioned)
    recorder = ResponseRecorder(vary_partitioned=["Origin", "X-Origin", "Referer"])
    recorder.start(200, headers)
    recorder.add(b'{"a": 1}')
    assert recorder.finish() is not None
