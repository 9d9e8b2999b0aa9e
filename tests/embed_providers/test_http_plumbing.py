"""The core helper the HTTP embedders share: Retry-After, batch splitting, backoff."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from semcache_embed_http import (
    RetryPolicy,
    is_retryable,
    parse_retry_after,
    resolve_api_key,
    split_batches,
    strip_suffix_path,
)


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": " 0.5 "}) == 0.5
    assert parse_retry_after({"retry-after": "-4"}) == 0.0
    date = formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": formatdate(now - 30, usegmt=True)}, now=now) == 0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "nan"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


def test_split_batches_by_count_and_bytes() -> None:
    texts = [str(i) for i in range(7)]
    assert split_batches(texts, 3) == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert split_batches(["aaaa", "bb", "cc", "dddddd", "e"], 10, max_bytes=6) == [
        ["aaaa", "bb"],
        ["cc"],
        ["dddddd"],
        ["e"],
    ]
    assert split_batches(["ab", "cd"], 10, max_bytes=6, overhead=2) == [["ab"], ["cd"]]
    assert split_batches(["é" * 3, "x"], 10, max_bytes=6) == [["ééé"], ["x"]]  # UTF-8 bytes
    assert split_batches([], 5) == []


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0)
    for attempt, ceiling in [(0, 0.2), (1, 0.4), (2, 0.8), (5, 1.0)]:
        for _ in range(20):
            assert ceiling / 2 <= policy.backoff(attempt) <= ceiling


def test_what_is_retried() -> None:
    assert all(is_retryable(s) for s in (408, 429, 500, 502, 503, 504, 529))
    assert not any(is_retryable(s) for s in (400, 401, 403, 404, 422, 501, 505))


def test_api_key_resolution() -> None:
    env = {"A": "", "B": " from-b ", "C": "from-c"}
    assert resolve_api_key("given", "the setting", ["A", "B"], env) == ("given", "the setting")
    assert resolve_api_key(None, "the setting", ["A", "B", "C"], env) == ("from-b", "B")
    assert resolve_api_key(None, "x", ["A"], env) == (None, "")


def test_strip_suffix_path() -> None:
    assert strip_suffix_path("https://api.x.com/v1/", "/v1") == "https://api.x.com"
    assert strip_suffix_path("https://api.x.com/proxy", "/v1") == "https://api.x.com/proxy"
