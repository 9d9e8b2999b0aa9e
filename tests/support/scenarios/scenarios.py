"""Behaviours every HTTP adapter (ASGI, Django, Flask) must show, written once.

Each scenario is a function taking a :class:`Harness` (a real server on a loopback
port with the test app of :mod:`scenarios.backend` behind the cache). Adapters run
them all with ``pytest.mark.parametrize("scenario", SCENARIOS, ids=str)`` and build
each scenario's cache with ``build_cache(**scenario.settings)``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.scenarios.harness import Harness, Scenario

__all__ = ["SCENARIOS"]

SCENARIOS: list[Scenario] = []


def scenario(**settings: Any) -> Callable[[Callable[[Harness], None]], Callable[[Harness], None]]:
    def register(fn: Callable[[Harness], None]) -> Callable[[Harness], None]:
        SCENARIOS.append(Scenario(fn.__name__, fn, settings))
        return fn

    return register


def cache_status(response: httpx.Response) -> str | None:
    value: str | None = response.headers.get("x-semcache")
    return value


def chat(
    question: str, *, system: str | None = None, history: tuple[str, ...] = (), **params: Any
) -> dict[str, Any]:
    """An OpenAI chat body; ``history`` alternates user and assistant turns."""
    messages: list[dict[str, Any]] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    for index, text in enumerate(history):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    messages.append({"role": "user", "content": question})
    return {"model": params.pop("model", "gpt-test"), "messages": messages, **params}


def expect(response: httpx.Response, status: str, code: int = 200) -> httpx.Response:
    assert cache_status(response) == status, (
        cache_status(response),
        response.status_code,
        response.text,
    )
    assert response.status_code == code, (response.status_code, response.text)
    return response


def miss_stored(h: Harness, path: str, code: int = 200, **kwargs: Any) -> httpx.Response:
    """POST that must be a stored miss; waits for the write (it follows the response)."""
    before = h.stores()
    response = expect(h.post(path, **kwargs), "miss", code)
    h.wait_stores(before + 1)
    return response


# -- hits, misses and headers ----------------------------------------------------------


@scenario()
def miss_then_hit_then_paraphrase(h: Harness) -> None:
    first = miss_stored(h, "/api/answer", json={"query": "What is the capital of France?"})
    assert first.json()["n"] == 1

    again = expect(h.ask("What is the capital of France?"), "hit")
    assert again.content == first.content
    assert again.headers["x-semcache-similarity"] == "1.0000"

    paraphrase = expect(h.ask("tell me what is the capital of France"), "hit")
    assert paraphrase.content == first.content
    assert 0.8 <= float(paraphrase.headers["x-semcache-similarity"]) < 1.0

    other = expect(h.ask("How do I bake sourdough bread?"), "miss")
    assert other.json()["n"] == 2
    assert h.backend.calls == 2


@scenario()
def hit_replays_status_and_headers(h: Harness) -> None:
    first = miss_stored(
        h,
        "/api/answer",
        203,
        json={"query": "List three prime numbers"},
        headers={"x-test-status": "203"},
    )
    assert first.headers["x-request-id"] == "req-1"
    assert first.headers["x-custom"] == "kept"

    hit = expect(h.ask("List three prime numbers"), "hit", 203)
    assert hit.content == first.content
    assert hit.headers["content-type"] == "application/json"
    assert int(hit.headers["content-length"]) == len(hit.content)
    assert "x-request-id" not in hit.headers  # per-response ids are not replayed
    assert "x-custom" not in hit.headers  # only an allowlist of headers is replayed
    assert "set-cookie" not in hit.headers
    assert int(hit.headers["age"]) >= 0
    for name in ("date", "server", "x-semcache", "content-length"):
        assert len(hit.headers.get_list(name)) <= 1, name


@scenario()
def requests_out_of_scope_are_untouched(h: Harness) -> None:
    response = h.request("GET", "/api/answer")
    assert "x-semcache" not in response.headers
    assert h.backend.calls == 0


# -- extraction -------------------------------------------------------------------------

FORMATS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("query", {"query": "How tall is Mount Everest?"}, {"query": "how tall is mount everest"}),
    (
        "prompt",
        {"prompt": "Write a limerick about cats"},
        {"prompt": "Write a limerick about a cat"},
    ),
    (
        "input string",
        {"input": "Summarise the plot of Hamlet"},
        {"input": "summarise the plot of hamlet!"},
    ),
    (
        "input list",
        {"input": ["Translate good morning", "into Spanish"]},
        {"input": ["translate good morning", "into spanish"]},
    ),
    (
        "chat string content",
        chat("Why is the sky blue?", system="Be brief.", history=("Hi", "Hello!")),
        chat("why is the sky blue", system="Be brief.", history=("Hi", "Hello!")),
    ),
    (
        "chat content parts",
        {
            "model": "gpt-test",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Describe the water cycle in detail"}],
                }
            ],
        },
        {
            "model": "gpt-test",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "describe the water cycle in detail"}],
                }
            ],
        },
    ),
    (
        "responses api",
        {
            "model": "gpt-test",
            "instructions": "Answer in French.",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is the tallest tree species?"}
                    ],
                }
            ],
        },
        {
            "model": "gpt-test",
            "instructions": "Answer in French.",
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "what is the tallest tree species"}],
                }
            ],
        },
    ),
    (
        "anthropic messages",
        {
            "model": "claude-test",
            "max_tokens": 100,
            "system": "You are a geologist.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "How are volcanoes formed?"}]}
            ],
        },
        {
            "model": "claude-test",
            "max_tokens": 100,
            "system": "You are a geologist.",
            "messages": [{"role": "user", "content": "how are volcanoes formed"}],
        },
    ),
]


@scenario()
def every_extraction_format_hits(h: Harness) -> None:
    for index, (name, first, paraphrase) in enumerate(FORMATS, start=1):
        miss_stored(h, "/api/answer", json=first)
        hit = h.post("/api/answer", json=paraphrase)
        assert cache_status(hit) == "hit", name
        assert hit.json()["n"] == index, name
    assert h.backend.calls == len(FORMATS)


@scenario()
def last_user_turn_is_the_question(h: Harness) -> None:
    history = ("Tell me about Paris", "Paris is the capital of France.")
    miss_stored(
        h, "/v1/chat/completions", json=chat("How many people live there?", history=history)
    )
    # Same conversation, reworded last turn: a hit (only the last turn is embedded).
    expect(
        h.post("/v1/chat/completions", json=chat("how many people live there", history=history)),
        "hit",
    )
    # A different last turn in the same conversation: a miss.
    expect(
        h.post("/v1/chat/completions", json=chat("What is its tallest building?", history=history)),
        "miss",
    )


# -- partitions ----------------------------------------------------------------------------


def _prevents_hit(h: Harness, base: dict[str, Any], variant: dict[str, Any], **kwargs: Any) -> None:
    headers = kwargs.pop("headers", None)
    variant_headers = kwargs.pop("variant_headers", headers)
    first = miss_stored(h, "/v1/chat/completions", json=base, headers=headers)
    other = expect(h.post("/v1/chat/completions", json=variant, headers=variant_headers), "miss")
    assert other.json()["n"] != first.json()["n"]
    expect(h.post("/v1/chat/completions", json=base, headers=headers), "hit")


@scenario()
def temperature_partitions(h: Harness) -> None:
    q = "Suggest a name for a bakery"
    _prevents_hit(h, chat(q, temperature=0.0), chat(q, temperature=1.0))


@scenario()
def other_parameters_partition(h: Harness) -> None:
    q = "Suggest a name for a florist"
    base = chat(q, max_tokens=50)
    miss_stored(h, "/v1/chat/completions", json=base)
    for change in (
        {"max_tokens": 10},
        {"top_p": 0.5},
        {"seed": 7},
        {"n": 2},
        {"stop": ["\n"]},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
    ):
        response = h.post("/v1/chat/completions", json={**base, **change})
        assert cache_status(response) == "miss", change
    # Fields that only label a request do not split the cache.
    expect(h.post("/v1/chat/completions", json={**base, "user": "someone-else"}), "hit")


@scenario()
def system_prompt_partitions(h: Harness) -> None:
    q = "Describe a sunset"
    _prevents_hit(h, chat(q, system="You are a poet."), chat(q, system="You are a physicist."))


@scenario()
def model_partitions(h: Harness) -> None:
    q = "Give me a fun fact about octopuses"
    _prevents_hit(h, chat(q, model="model-a"), chat(q, model="model-b"))


@scenario()
def earlier_turns_partition(h: Harness) -> None:
    q = "What should I pack?"
    _prevents_hit(
        h,
        chat(q, history=("I am going skiing", "Sounds fun!")),
        chat(q, history=("I am going to the beach", "Sounds fun!")),
    )


@scenario(context_mode="semantic", context_threshold=0.8)
def earlier_turns_match_by_meaning_in_semantic_context_mode(h: Harness) -> None:
    q = "What should I pack?"
    skiing = ("I am going skiing in the Alps next week", "Sounds fun!")
    miss_stored(h, "/v1/chat/completions", json=chat(q, history=skiing))
    reworded = ("i am going skiing in the alps next week", "sounds fun")
    expect(h.post("/v1/chat/completions", json=chat(q, history=reworded)), "hit")
    beach = ("Tell me about relational databases", "Sure.")
    expect(h.post("/v1/chat/completions", json=chat(q, history=beach)), "miss")


@scenario()
def stream_flag_partitions(h: Harness) -> None:
    body = chat("Name the planets of the solar system")
    miss_stored(h, "/v1/chat/completions", json=body)
    streamed = h.post("/v1/chat/completions", json={**body, "stream": True})
    expect(streamed, "miss")
    assert streamed.headers["content-type"].startswith("text/event-stream")


@scenario()
def credentials_partition(h: Harness) -> None:
    q = chat("What are the opening hours?")
    alice = {"authorization": "Bearer key-alice"}
    _prevents_hit(h, q, q, headers=alice, variant_headers={"authorization": "Bearer key-bob"})
    expect(h.post("/v1/chat/completions", json=q), "miss")  # anonymous is its own partition
    expect(h.post("/v1/chat/completions", json=q, headers={"x-api-key": "key-alice"}), "miss")


@scenario(tenant_header="X-Tenant")
def trusted_tenant_header_partitions(h: Harness) -> None:
    q = chat("What is our refund policy?")
    _prevents_hit(h, q, q, headers={"x-tenant": "acme"}, variant_headers={"x-tenant": "globex"})


@scenario()
def untrusted_tenant_header_is_ignored(h: Harness) -> None:
    q = chat("What is the return window?")
    miss_stored(h, "/v1/chat/completions", json=q, headers={"x-tenant": "acme"})
    expect(h.post("/v1/chat/completions", json=q, headers={"x-tenant": "globex"}), "hit")


@scenario(auth_mode="bypass")
def credentials_bypass_when_configured(h: Harness) -> None:
    q = chat("Summarise my invoices")
    auth = {"authorization": "Bearer key-alice"}
    expect(h.post("/v1/chat/completions", json=q, headers=auth), "bypass")
    expect(h.post("/v1/chat/completions", json=q, headers=auth), "bypass")
    assert h.backend.calls == 2


@scenario(auth_mode="shared")
def credentials_shared_when_configured(h: Harness) -> None:
    q = chat("What is the boiling point of water?")
    miss_stored(h, "/v1/chat/completions", json=q, headers={"authorization": "Bearer key-alice"})
    expect(
        h.post("/v1/chat/completions", json=q, headers={"authorization": "Bearer key-bob"}), "hit"
    )


# -- what is stored -----------------------------------------------------------------------------


@scenario()
def uncacheable_responses_are_not_stored(h: Harness) -> None:
    cases = [
        ({"x-test-status": "500"}, 500, "Why did the server fail?"),
        ({"x-test-status": "404"}, 404, "Where is the missing page?"),
        ({"x-test-set-cookie": "1"}, 200, "Can you remember my session?"),
        ({"x-test-cache-control": "private"}, 200, "What is in my private account?"),
        ({"x-test-cache-control": "no-store"}, 200, "Tell me a one-off secret"),
        # Only 200 and 203 are stored.
        ({"x-test-status": "201"}, 201, "Create a haiku about spring"),
        ({"x-test-status": "202"}, 202, "Queue a summary of the news"),
        # A Vary on a request header that is not part of the partition.
        ({"x-test-vary": "User-Agent"}, 200, "Greet me in my own language"),
        # An error sent with a 200.
        ({"x-test-body": "error"}, 200, "Why is the model overloaded?"),
    ]
    for headers, code, question in cases:
        first = expect(
            h.post("/api/answer", json={"query": question}, headers=headers), "miss", code
        )
        if "x-test-set-cookie" in headers:
            assert first.headers.get("set-cookie")  # passed on, just not stored
        if "x-test-body" in headers:
            assert first.json()["error"]["type"] == "server_error"  # passed on as it came
        second = expect(h.post("/api/answer", json={"query": question}), "miss")
        assert second.json()["n"] == h.backend.calls
    h.wait_stores(len(cases))
    assert h.stores() == len(cases)  # only each second, plain answer


@scenario()
def vary_on_a_partitioned_header_is_stored_per_value(h: Harness) -> None:
    question = {"query": "Say good morning"}
    vary = {"x-test-vary": "Accept-Language, Accept-Encoding"}
    french = {**vary, "accept-language": "fr"}
    miss_stored(h, "/api/answer", json=question, headers=french)
    expect(h.post("/api/answer", json=question, headers=french), "hit")
    german = expect(
        h.post("/api/answer", json=question, headers={**vary, "accept-language": "de"}), "miss"
    )
    assert german.json()["n"] == 2


@scenario()
def html_and_empty_answers_are_passed_on_not_stored(h: Harness) -> None:
    question = "What does the gateway say?"
    for kind, content_type in (("html", "text/html"), ("empty", "application/json")):
        first = expect(
            h.post("/api/answer", json={"query": question}, headers={"x-test-body": kind}),
            "miss",
        )
        assert first.headers["content-type"].startswith(content_type)
        assert (b"Bad gateway" in first.content) if kind == "html" else first.content == b""
    second = expect(h.post("/api/answer", json={"query": question}), "miss")
    assert second.json()["n"] == 3
    h.wait_stores(1)
    assert h.stores() == 1


# -- per-request control --------------------------------------------------------------------


@scenario()
def request_no_store_neither_reads_nor_writes(h: Harness) -> None:
    body = {"query": "What time zone is Tokyo in?"}
    expect(h.post("/api/answer", json=body, headers={"cache-control": "no-store"}), "bypass")
    expect(h.post("/api/answer", json=body), "miss")
    h.wait_stores(1)
    expect(h.post("/api/answer", json=body, headers={"cache-control": "no-store"}), "bypass")
    assert h.stores() == 1


@scenario()
def request_no_cache_refreshes(h: Harness) -> None:
    body = {"query": "What is the latest stable Python version?"}
    key = {"authorization": "Bearer refresher"}  # refreshing is for identified clients
    miss_stored(h, "/api/answer", json=body, headers=key)
    refreshed = h.post("/api/answer", json=body, headers={**key, "cache-control": "no-cache"})
    expect(refreshed, "miss")
    assert refreshed.json()["n"] == 2
    h.wait_stores(2)
    hit = expect(h.post("/api/answer", json=body, headers=key), "hit")
    assert hit.json()["n"] == 2  # the refreshed answer replaced the old one


@scenario()
def anonymous_clients_cannot_refresh_or_pin_shared_answers(h: Harness) -> None:
    body = {"query": "What is the capital of Australia?"}
    miss_stored(h, "/api/answer", json=body)
    # An anonymous client shares its partition with every other: its no-cache would
    # re-roll everyone's answer, so it is served the stored one.
    rerolled = h.post("/api/answer", json=body, headers={"cache-control": "no-cache"})
    assert expect(rerolled, "hit").json()["n"] == 1


@scenario()
def ttl_header_zero_does_not_store(h: Harness) -> None:
    body = {"query": "What is the weather like today?"}
    expect(h.post("/api/answer", json=body, headers={"x-semcache-ttl": "0"}), "miss")
    expect(h.post("/api/answer", json=body, headers={"x-semcache-ttl": "not-a-number"}), "miss")
    h.wait_stores(1)  # an invalid TTL is ignored: stored with the default
    expect(h.post("/api/answer", json=body), "hit")


@scenario(max_ttl=1)
def ttl_header_is_capped(h: Harness) -> None:
    body = {"query": "What is the current exchange rate?"}
    key = {"authorization": "Bearer pinner"}  # a TTL is for identified clients
    miss_stored(h, "/api/answer", json=body, headers={**key, "x-semcache-ttl": "86400"})
    # Capped at max_ttl=1s, so the entry expires: poll until it does (never with a 1 day TTL).
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if cache_status(h.post("/api/answer", json=body, headers=key)) == "miss":
            return
        time.sleep(0.1)
    raise AssertionError("the entry outlived max_ttl")


# -- upstream 429 breaker ----------------------------------------------------------------------


@scenario(upstream_429_threshold=2, upstream_429_cooldown=60.0)
def upstream_429_breaker(h: Harness) -> None:
    a, b = {"authorization": "Bearer key-a"}, {"authorization": "Bearer key-b"}
    miss_stored(h, "/api/limited", json={"query": "What is the speed of light?"}, headers=b)
    h.backend.rate_limited = True
    h.backend.limited_credential = a["authorization"]
    # A bypassed request reaches the app, but its 429 opens no breaker.
    no_store = {**a, "cache-control": "no-store"}
    for question in ("Name a prime number", "Name a primary colour", "Name a planet"):
        expect(h.post("/api/limited", json={"query": question}, headers=no_store), "bypass", 429)
    for question in ("Who wrote War and Peace?", "How deep is the Pacific Ocean?"):
        calls = h.backend.calls
        expect(h.post("/api/limited", json={"query": question}, headers=a), "miss", 429)
        assert h.backend.calls == calls + 1  # the breaker was still closed
    calls = h.backend.calls
    rejected = expect(
        h.post("/api/limited", json={"query": "Why do cats purr?"}, headers=a), "miss", 503
    )
    assert 59 <= int(rejected.headers["retry-after"]) <= 60
    assert rejected.json()["error"]["type"] == "upstream_rate_limited"
    assert h.backend.calls == calls  # short-circuited: the app was not called
    # Another credential's misses still reach the app, and its hits are served.
    expect(h.post("/api/limited", json={"query": "Why is the sky blue?"}, headers=b), "miss")
    assert h.backend.calls == calls + 1
    expect(h.post("/api/limited", json={"query": "what is the speed of light"}, headers=b), "hit")


# -- streaming -----------------------------------------------------------------------------------


def _sse_events(body: bytes) -> list[bytes]:
    return [event for event in body.split(b"\n\n") if event]


@scenario()
def sse_passes_through_chunk_by_chunk(h: Harness) -> None:
    gate = f"ttfb-{h.tag}"
    body = {"query": "Stream me a haiku about the sea", "stream": True}
    headers = {"x-test-gate": gate, "x-test-stream-id": "ttfb"}
    with h.stream("POST", "/api/stream", json=body, headers=headers) as response:
        assert cache_status(response) == "miss"
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        first = next(chunks)
        # The first event reached the client while the app is still held before its second.
        state = h.backend.streams["ttfb"]
        assert state.state == "running" and state.events_sent <= 1
        assert first.startswith(b"data: ")
        h.backend.release(gate)
        rest = b"".join(chunks)
    full = first + rest
    assert full.endswith(b"data: [DONE]\n\n")
    assert len(_sse_events(full)) == 4


@scenario()
def sse_replayed_on_hit(h: Harness) -> None:
    body = {"query": "Stream a short story about a robot", "stream": True}
    before = h.stores()
    with h.stream("POST", "/api/stream", json=body, headers={"x-test-events": "5"}) as response:
        assert cache_status(response) == "miss"
        original = response.read()
    h.wait_stores(before + 1)

    with h.stream("POST", "/api/stream", json=body) as response:
        assert cache_status(response) == "hit"
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "x-custom" not in response.headers  # only an allowlist is replayed
        assert "content-length" not in response.headers  # chunked, like the original
        chunks = list(response.iter_raw())
    replay = b"".join(chunks)
    assert replay == original
    assert replay.endswith(b"data: [DONE]\n\n")
    events = _sse_events(replay)
    assert len(events) == 6
    for event in events[:-1]:
        assert json.loads(event.removeprefix(b"data: "))["object"] == "chat.completion.chunk"
    assert h.backend.calls == 1


@scenario()
def chat_stream_replayed_on_hit(h: Harness) -> None:
    body = {**chat("Count from one to three"), "stream": True}
    before = h.stores()
    original = h.post("/v1/chat/completions", json=body)
    expect(original, "miss")
    h.wait_stores(before + 1)
    hit = expect(
        h.post(
            "/v1/chat/completions",
            json={**body, "messages": chat("count from one to three")["messages"]},
        ),
        "hit",
    )
    assert hit.content == original.content
    assert hit.content.endswith(b"data: [DONE]\n\n")


@scenario()
def abandoned_stream_is_not_stored(h: Harness) -> None:
    gate = f"abandon-{h.tag}"
    body = {"query": "Stream the history of Rome", "stream": True}
    headers = {"x-test-gate": gate, "x-test-stream-id": "abandoned"}
    with h.stream("POST", "/api/stream", json=body, headers=headers) as response:
        next(response.iter_raw())
    # Leaving the block closed the connection mid-stream. An ASGI app notices at once;
    # a WSGI app only when it writes again, so let it write after a while.
    state = h.backend.streams["abandoned"]
    if not h.backend.wait_for(lambda: state.state != "running", timeout=2.0):
        h.backend.release(gate)
        assert h.backend.wait_for(lambda: state.state != "running")
    h.backend.release(gate)
    again = expect(h.post("/api/stream", json=body), "miss")
    assert again.content.endswith(b"data: [DONE]\n\n")


@scenario()
def streaming_route_does_not_hang(h: Harness) -> None:
    body = {"query": "Stream heartbeats forever", "stream": True}
    with h.stream(
        "POST", "/api/forever", json=body, headers={"x-test-stream-id": "forever"}
    ) as response:
        assert cache_status(response) == "miss"
        next(response.iter_raw())
    state = h.backend.streams["forever"]
    # The app must learn that the client left (http.disconnect reached it) and stop.
    assert h.backend.wait_for(lambda: state.state == "closed"), state
    expect(h.post("/api/answer", json={"query": "Is the server still responsive?"}), "miss")


# -- request bodies -----------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@scenario(max_body_bytes=1024)
def oversize_bodies_pass_through(h: Harness) -> None:
    big = json.dumps({"query": "What is big?", "pad": "x" * 4000}).encode()
    json_type = {"content-type": "application/json"}
    for _ in range(2):
        response = expect(h.post("/api/answer", content=big, headers=json_type), "bypass")
        assert response.json()["sha256"] == _sha(big)
    if h.chunked_requests:
        parts = [big[:700], big[700:1500], big[1500:]]
        chunked = expect(h.post("/api/answer", content=iter(parts), headers=json_type), "bypass")
        assert chunked.json()["sha256"] == _sha(big)
        small = json.dumps({"query": "What is small?"}).encode()
        eligible = expect(
            h.post("/api/answer", content=iter([small[:5], small[5:]]), headers=json_type), "miss"
        )
        assert eligible.json()["sha256"] == _sha(small)
    assert h.stores() <= 1


@scenario()
def broken_bodies_pass_through(h: Harness) -> None:
    cases: list[tuple[bytes, str]] = [
        (b'{"query": "broken', "application/json"),
        (b'\xff\xfe{"query": "not utf-8 \xe9"}', "application/json"),
        ('{"query": "caf\u00e9"}'.encode("latin-1"), "application/json"),
        (b"query=hello+world", "application/x-www-form-urlencoded"),
        (b'{"question_text": "no known field"}', "application/json"),
        (b'["a", "list"]', "application/json"),
        (b"", "application/json"),
        (b"\x00\x01binary", "application/octet-stream"),
    ]
    for content, content_type in cases:
        response = expect(
            h.post("/api/answer", content=content, headers={"content-type": content_type}), "bypass"
        )
        assert response.json()["sha256"] == _sha(content), content
    assert h.backend.calls == len(cases)
    assert h.stores() == 0


@scenario()
def background_tasks_run(h: Harness) -> None:
    body = {"query": "Send me a confirmation email"}
    expect(h.post("/api/background", json=body, headers={"x-test-stream-id": "on-miss"}), "miss")
    expect(
        h.post(
            "/api/background",
            json=body,
            headers={"x-test-stream-id": "on-bypass", "cache-control": "no-store"},
        ),
        "bypass",
    )
    assert h.backend.wait_for(lambda: {"on-miss", "on-bypass"} <= set(h.backend.background)), (
        h.backend.background
    )


# -- concurrency ----------------------------------------------------------------------------------


@scenario()
def concurrent_identical_misses_are_collapsed(h: Harness) -> None:
    gate = f"flight-{h.tag}"
    body = {"query": "Explain how single flight works"}
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def call() -> None:
        with h.new_client() as client:
            response = client.post(
                h.base_url + "/api/answer", json=body, headers={"x-test-gate": gate}
            )
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    # One request is in the app; all four have looked up and missed, so three wait.
    assert h.backend.wait_for(lambda: h.backend.calls == 1 and h.cache.counters["misses"] >= 4)
    h.backend.release(gate)
    for thread in threads:
        thread.join(30)
    assert sorted(cache_status(r) or "" for r in results) == ["hit", "hit", "hit", "miss"]
    assert {r.json()["n"] for r in results} == {1}
    assert h.backend.calls == 1
