"""Where a request goes, for the partition: the same pair the proxy uses for its upstream."""

from __future__ import annotations

import httpx
import pytest

from semcache_httpx import SemanticCacheTransport, destination_of
from tests.support.scenarios.harness import build_cache


def test_default_is_the_origin_and_the_whole_path() -> None:
    assert destination_of("http://127.0.0.1:9100/v1/chat/completions?x=1") == (
        "http://127.0.0.1:9100",
        "/v1/chat/completions",
    )
    # As httpx writes it: lower-case host, no default port.
    assert destination_of("https://API.openai.com:443/v1/messages") == (
        "https://api.openai.com",
        "/v1/messages",
    )
    # Percent-encoding kept, as the proxy keeps it.
    assert destination_of("http://h/v1/chat%2Fcompletions")[1] == "/v1/chat%2Fcompletions"


def test_an_upstream_with_a_path_is_the_destination_of_the_urls_under_it() -> None:
    ups = ["https://gw.example.com/openai/", "https://gw.example.com/openai/eu"]
    assert destination_of("https://gw.example.com/openai/v1/chat/completions", ups) == (
        "https://gw.example.com/openai",
        "/v1/chat/completions",
    )
    # The longest base wins; written as given (less the trailing slash).
    assert destination_of("https://gw.example.com/openai/eu/v1/responses", ups) == (
        "https://gw.example.com/openai/eu",
        "/v1/responses",
    )
    # Not under it: a path segment that only starts alike, another host or scheme.
    assert destination_of("https://gw.example.com/openai2/v1/x", ups)[0] == "https://gw.example.com"
    assert destination_of("http://gw.example.com/openai/v1/x", ups)[0] == "http://gw.example.com"
    # A base that is an origin changes nothing but its spelling.
    assert destination_of("http://a.test:8080/v1/x", ["http://a.test:8080/"]) == (
        "http://a.test:8080",
        "/v1/x",
    )


def test_upstreams_must_be_absolute_urls() -> None:
    with pytest.raises(ValueError, match="upstreams"):
        SemanticCacheTransport(
            build_cache(), httpx.MockTransport(lambda r: None), upstreams=["/v1"]
        )  # type: ignore[arg-type,return-value]
