"""The real OpenAI and Anthropic SDKs over the semantic-cache transport, sync and async."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

import semcache_httpx
import semcache_httpx.httpx2
from semcache_httpx import AsyncSemanticCacheTransport, SemanticCacheTransport
from semcache_proxy.testing import FakeLLM
from tests.support.broken_caches import BrokenCache
from tests.support.scenarios.harness import build_cache

QUESTION = "how do I rotate my api keys safely"
PARAPHRASE = "how do I rotate my api keys safely please"
OTHER = "what is the boiling point of water at sea level"


def chat(text: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": text}]


# OpenAI 3.x takes httpx and httpx2 clients: both are tested; Anthropic 2.x only httpx2.
FLAVOURS = {"httpx": semcache_httpx, "httpx2": semcache_httpx.httpx2}


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> Any:
    return FLAVOURS[request.param]


def openai_client(upstream: str, cache: Any, flavour: Any = semcache_httpx) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test",
        base_url=upstream + "/v1",
        max_retries=0,
        http_client=flavour.httpx_client(cache, trust_env=False),
    )


def anthropic_client(upstream: str, cache: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url=upstream,
        max_retries=0,
        http_client=semcache_httpx.httpx2.httpx_client(cache, trust_env=False),
    )


def ask(client: openai.OpenAI, text: str, **params: Any) -> tuple[str, str, str]:
    """(x-semcache, answer text, system fingerprint of the body) of one chat call."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=chat(text, params.pop("system", None)), **params
    )
    completion = raw.parse()
    return (
        raw.headers["x-semcache"],
        completion.choices[0].message.content or "",
        raw.http_request.url.path,
    )


def ask_stream(client: openai.OpenAI, text: str) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=chat(text), stream=True
    )
    parts = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
    return raw.headers["x-semcache"], "".join(parts)


# -- OpenAI, sync ---------------------------------------------------------------------------


def test_openai_sync_paraphrase_is_a_hit_with_the_header(
    upstream: str, fake: FakeLLM, flavour: Any
) -> None:
    cache = build_cache()
    with openai_client(upstream, cache, flavour) as client:
        status, first, path = ask(client, QUESTION)
        assert (status, path) == ("miss", "/v1/chat/completions")
        assert first == f"Answer #1 to: {QUESTION}"
        # Stored before the first call returned: the paraphrase is a hit at once.
        assert ask(client, PARAPHRASE)[:2] == ("hit", first)
        assert ask(client, OTHER)[0] == "miss"
    assert fake.calls == 2


def test_openai_sync_partition_model_parameters_system(upstream: str, fake: FakeLLM) -> None:
    cache = build_cache()
    with openai_client(upstream, cache) as client:
        assert ask(client, QUESTION)[0] == "miss"
        assert ask(client, PARAPHRASE, temperature=0.9)[0] == "miss"
        assert ask(client, PARAPHRASE, system="Answer in French.")[0] == "miss"
        raw = client.chat.completions.with_raw_response.create(
            model="other-model", messages=chat(PARAPHRASE)
        )
        assert raw.headers["x-semcache"] == "miss"
        assert ask(client, PARAPHRASE)[0] == "hit"
    assert fake.calls == 4


def test_openai_sync_credential_is_in_the_partition(upstream: str, fake: FakeLLM) -> None:
    cache = build_cache()
    http = semcache_httpx.httpx_client(cache, trust_env=False)
    a = openai.OpenAI(api_key="sk-a", base_url=upstream + "/v1", http_client=http, max_retries=0)
    b = openai.OpenAI(api_key="sk-b", base_url=upstream + "/v1", http_client=http, max_retries=0)
    assert ask(a, QUESTION)[0] == "miss"
    assert ask(b, QUESTION)[0] == "miss"
    assert ask(a, PARAPHRASE)[0] == "hit"
    http.close()


def test_openai_sync_stream_is_replayed_to_the_sdk_parser(
    upstream: str, fake: FakeLLM, flavour: Any
) -> None:
    cache = build_cache()
    with openai_client(upstream, cache, flavour) as client:
        status, first = ask_stream(client, QUESTION)
        assert (status, first) == ("miss", f"Answer #1 to: {QUESTION}")
        # The SDK stops reading at data: [DONE]; the answer is stored all the same.
        assert ask_stream(client, PARAPHRASE) == ("hit", first)
        # Streamed and not streamed are two partitions.
        assert ask(client, PARAPHRASE)[0] == "miss"
    assert fake.calls == 2


def test_openai_sync_stream_left_early_is_not_stored(
    upstream: str, fake: FakeLLM, flavour: Any
) -> None:
    cache = build_cache()
    with openai_client(upstream, cache, flavour) as client:
        stream = client.chat.completions.create(
            model="gpt-test", messages=chat(QUESTION), stream=True
        )
        next(iter(stream))
        stream.close()
        assert ask_stream(client, QUESTION)[0] == "miss"
    assert cache.counters["stores"] == 1


def test_replayed_headers_match_the_stored_answer(upstream: str, fake: FakeLLM) -> None:
    fake.extra_headers = {"x-request-id": "req-1", "openai-processing-ms": "12"}
    cache = build_cache()
    with openai_client(upstream, cache) as client:
        first = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=chat(QUESTION)
        )
        second = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=chat(PARAPHRASE)
        )
    assert second.headers["x-semcache"] == "hit"
    assert float(second.headers["x-semcache-similarity"]) >= 0.8
    assert second.headers["x-semcache-entry"]
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.parse().model_dump() == first.parse().model_dump()


def test_openai_sync_fails_open_when_the_cache_is_broken(
    upstream: str, fake: FakeLLM, flavour: Any
) -> None:
    with openai_client(upstream, BrokenCache(), flavour) as client:
        assert ask(client, QUESTION)[:2] == ("miss", f"Answer #1 to: {QUESTION}")
        assert ask_stream(client, QUESTION) == ("miss", f"Answer #2 to: {QUESTION}")
        assert ask(client, QUESTION)[0] == "miss"
    assert fake.calls == 3


def test_sync_out_of_scope_and_bypass(upstream: str, fake: FakeLLM) -> None:
    cache = build_cache()
    with httpx.Client(transport=SemanticCacheTransport(cache), base_url=upstream) as http:
        echo = http.post("/echo/v1/embeddings", json={"input": QUESTION})
        assert echo.status_code == 200 and "x-semcache" not in echo.headers
        body = {"model": "m", "messages": chat(QUESTION)}
        no_store = http.post(
            "/v1/chat/completions", json=body, headers={"cache-control": "no-store"}
        )
        assert no_store.headers["x-semcache"] == "bypass"
        broken = http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert broken.headers["x-semcache"] == "bypass" and broken.status_code == 400

        def chunks():
            yield b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'

        streamed = http.post("/v1/chat/completions", content=chunks())
        assert streamed.headers["x-semcache"] == "bypass" and streamed.status_code == 200


def test_upstream_errors_are_passed_on_not_stored(upstream: str, fake: FakeLLM) -> None:
    fake.status = 500
    cache = build_cache()
    with openai_client(upstream, cache) as client:
        with pytest.raises(openai.InternalServerError):
            ask(client, QUESTION)
        fake.status = None
        assert ask(client, QUESTION)[0] == "miss"


# -- Anthropic, sync --------------------------------------------------------------------------


def test_anthropic_sync_message_and_stream(upstream: str, fake: FakeLLM) -> None:
    cache = build_cache()
    with anthropic_client(upstream, cache) as client:
        params: dict[str, Any] = {"model": "claude-test", "max_tokens": 64}
        raw = client.messages.with_raw_response.create(
            messages=[{"role": "user", "content": QUESTION}], **params
        )
        assert raw.headers["x-semcache"] == "miss"
        first = raw.parse().content[0].text
        assert first == f"Answer #1 to: {QUESTION}"
        again = client.messages.with_raw_response.create(
            messages=[{"role": "user", "content": PARAPHRASE}], **params
        )
        assert again.headers["x-semcache"] == "hit"
        assert again.parse().content[0].text == first
        # Another system prompt: another partition.
        other = client.messages.with_raw_response.create(
            system="Be brief.", messages=[{"role": "user", "content": PARAPHRASE}], **params
        )
        assert other.headers["x-semcache"] == "miss"

        for expected, text in (("miss", QUESTION), ("hit", PARAPHRASE)):
            with client.messages.stream(
                messages=[{"role": "user", "content": text}], **params
            ) as stream:
                assert stream.response.headers["x-semcache"] == expected
                assert "".join(stream.text_stream) == f"Answer #3 to: {QUESTION}"
    assert fake.calls == 3


# -- async ------------------------------------------------------------------------------------


async def test_openai_async_plain_and_streamed(upstream: str, fake: FakeLLM, flavour: Any) -> None:
    cache = build_cache()
    async with openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=upstream + "/v1",
        max_retries=0,
        http_client=flavour.async_httpx_client(cache, trust_env=False),
    ) as client:
        for expected, text in (("miss", QUESTION), ("hit", PARAPHRASE)):
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-test", messages=chat(text)
            )
            assert raw.headers["x-semcache"] == expected
            assert raw.parse().choices[0].message.content == f"Answer #1 to: {QUESTION}"
        for expected, text in (("miss", QUESTION), ("hit", PARAPHRASE)):
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-test", messages=chat(text), stream=True
            )
            assert raw.headers["x-semcache"] == expected
            parts = [c.choices[0].delta.content or "" async for c in raw.parse()]
            assert "".join(parts) == f"Answer #2 to: {QUESTION}"
    assert fake.calls == 2
    await cache.close()


async def test_anthropic_async_plain_and_streamed(upstream: str, fake: FakeLLM) -> None:
    cache = build_cache()
    params: dict[str, Any] = {"model": "claude-test", "max_tokens": 64}
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-test",
        base_url=upstream,
        max_retries=0,
        http_client=semcache_httpx.httpx2.async_httpx_client(cache, trust_env=False),
    ) as client:
        for expected, text in (("miss", QUESTION), ("hit", PARAPHRASE)):
            raw = await client.messages.with_raw_response.create(
                messages=[{"role": "user", "content": text}], **params
            )
            assert raw.headers["x-semcache"] == expected
            assert (await raw.parse()).content[0].text == f"Answer #1 to: {QUESTION}"
        for expected, text in (("miss", QUESTION), ("hit", PARAPHRASE)):
            async with client.messages.stream(
                messages=[{"role": "user", "content": text}], **params
            ) as stream:
                assert stream.response.headers["x-semcache"] == expected
                text_out = "".join([t async for t in stream.text_stream])
                assert text_out == f"Answer #2 to: {QUESTION}"
    assert fake.calls == 2
    await cache.close()


async def test_async_fails_open_when_the_cache_is_broken(upstream: str, fake: FakeLLM) -> None:
    transport = AsyncSemanticCacheTransport(BrokenCache())  # type: ignore[arg-type]
    async with openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=upstream + "/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport),
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=chat(QUESTION)
        )
        assert raw.headers["x-semcache"] == "miss"
        assert raw.parse().choices[0].message.content == f"Answer #1 to: {QUESTION}"
        stream = await client.chat.completions.create(
            model="gpt-test", messages=chat(QUESTION), stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream]
        assert "".join(parts) == f"Answer #2 to: {QUESTION}"


def test_compressed_answers_are_stored_and_replayed_as_sent(upstream: str, fake: FakeLLM) -> None:
    fake.gzip = True
    cache = build_cache()
    with openai_client(upstream, cache) as client:
        status, first, _ = ask(client, QUESTION)
        assert status == "miss"
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=chat(PARAPHRASE)
        )
        assert raw.headers["x-semcache"] == "hit"
        assert raw.headers["content-encoding"] == "gzip"  # httpx decodes it, as upstream's
        assert raw.parse().choices[0].message.content == first
        assert ask_stream(client, QUESTION)[0] == "miss"
        assert ask_stream(client, PARAPHRASE) == ("hit", f"Answer #2 to: {QUESTION}")
    assert fake.calls == 2
