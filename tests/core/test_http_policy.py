import pytest

from semcache import SemanticCache, Settings
from semcache.http import (
    Bypass,
    CachePlan,
    HttpCacheEngine,
    HttpCachePolicy,
    HttpRequest,
    StoredResponse,
    build_partition,
    cache_directives,
    credential_hash,
    wants_stream,
)
from semcache.testing import HashingTestEmbedder

JSON = ("content-type", "application/json")


def settings(**overrides):
    return Settings.from_env({}, **overrides)


def request(
    body=b'{"query": "What is the capital of France?"}', headers=(JSON,), path="/v1/ask", **kw
):
    if isinstance(body, dict):
        import json

        body = json.dumps(body).encode()
    return HttpRequest(
        kw.pop("method", "POST"), path, kw.pop("query_string", ""), tuple(headers), body
    )


async def plan(policy=None, **kw):
    return await (policy or HttpCachePolicy(settings())).plan(request(**kw))


# -- scope -----------------------------------------------------------------------------


def test_scope_methods_prefix_and_enabled():
    policy = HttpCachePolicy(settings(), methods=("post", "PUT"), path_prefix="/v1")
    assert policy.in_scope("POST", "/v1/chat")
    assert policy.in_scope("put", "/v1")
    assert not policy.in_scope("GET", "/v1/chat")
    assert not policy.in_scope("POST", "/v10/chat")  # prefixes match whole segments
    assert not policy.in_scope("POST", "/other")
    assert HttpCachePolicy(settings(), path_prefix="/api/").in_scope("POST", "/api/x")
    assert HttpCachePolicy(settings()).in_scope("POST", "/anything")
    assert not HttpCachePolicy(settings(enabled=False)).in_scope("POST", "/x")
    assert not HttpCachePolicy(settings(), enabled=False).in_scope("POST", "/x")
    assert HttpCachePolicy(settings(enabled=False), enabled=True).in_scope("POST", "/x")


# -- eligibility -------------------------------------------------------------------------


def test_precheck_on_headers():
    policy = HttpCachePolicy(settings(max_body_bytes=100))
    assert policy.precheck([]) is None
    assert policy.precheck([("cache-control", "no-store")]) == Bypass("no-store")
    assert policy.precheck([("content-length", "101")]) == Bypass("body too large")
    assert policy.precheck([("content-length", "100")]) is None
    assert policy.precheck([("content-length", "x")]) == Bypass("bad content-length")
    assert policy.precheck([("content-encoding", "gzip")]) == Bypass("compressed body")
    assert policy.precheck([("content-encoding", "identity")]) is None
    assert policy.precheck([("authorization", "Bearer k")]) is None
    bypassing = HttpCachePolicy(settings(auth_mode="bypass"))
    assert bypassing.precheck([("authorization", "Bearer k")]) == Bypass("credentials")
    assert bypassing.precheck([("x-api-key", "k")]) == Bypass("credentials")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b"\xff\xfe", "not utf-8"),
        (b'{"query": "caf\xe9"}', "not utf-8"),
        (b'{"query": "broken', "not json"),
        (b"query=a", "not json"),
        (b"[" * 100000 + b"]" * 100000, "not json"),
        (b'{"foo": 1}', "no query"),
        (b'["x"]', "no query"),
        (b'{"query": ""}', "no query"),
    ],
)
async def test_bodies_that_bypass(body, reason):
    policy = HttpCachePolicy(settings(max_body_bytes=1 << 20))
    assert await policy.plan(request(body)) == Bypass(reason)


async def test_body_over_limit_bypasses_even_without_content_length():
    policy = HttpCachePolicy(settings(max_body_bytes=10))
    assert await policy.plan(request()) == Bypass("body too large")


async def test_eligible_request_plan():
    p = await plan()
    assert isinstance(p, CachePlan)
    assert p.query == "What is the capital of France?"
    assert (p.lookup, p.store, p.ttl, p.stream) == (True, True, None, False)
    assert p.metadata == {"method": "POST", "path": "/v1/ask", "stream": False}
    assert p.flight_key.endswith("\x00What is the capital of France?")  # the exact key


# -- partitions -------------------------------------------------------------------------


def chat(question="Name a colour", **params):
    messages = params.pop("messages", [])
    return {
        "model": params.pop("model", "m"),
        "messages": [*messages, {"role": "user", "content": question}],
        **params,
    }


async def partition(body=None, headers=(JSON,), policy=None, **kw):
    p = await plan(policy, body=body or chat(), headers=headers, **kw)
    assert isinstance(p, CachePlan), p
    return p.partition


async def test_the_question_is_not_in_the_partition():
    assert await partition(chat("Name a colour")) == await partition(chat("name one colour please"))


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 1.0},
        {"top_p": 0.1},
        {"max_tokens": 5},
        {"seed": 1},
        {"n": 2},
        {"stop": ["x"]},
        {"tools": [{"type": "function"}]},
        {"tool_choice": "auto"},
        {"response_format": {"type": "json_object"}},
        {"stream": True},
        {"model": "other"},
        {"messages": [{"role": "system", "content": "Be terse."}]},
        {
            "messages": [
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ok"},
            ]
        },
    ],
)
async def test_answer_changing_parts_split_the_partition(change):
    assert await partition(chat()) != await partition(chat(**change))


@pytest.mark.parametrize("change", [{"user": "u1"}, {"metadata": {"tag": "x"}}])
async def test_labels_do_not_split_the_partition(change):
    assert await partition(chat()) == await partition(chat(**change))


async def test_ignored_fields_are_configurable():
    policy = HttpCachePolicy(settings(), ignored_fields={"temperature"})
    assert await partition(chat(temperature=0), policy=policy) == await partition(
        chat(temperature=1), policy=policy
    )
    strict = HttpCachePolicy(settings(), ignored_fields=())
    assert await partition(chat(), policy=strict) != await partition(chat(user="u"), policy=strict)


async def test_method_path_and_query_string_split_the_partition():
    base = await partition()
    assert base != await partition(path="/v1/other")
    assert base != await partition(query_string="api-version=2")
    policy = HttpCachePolicy(settings(), methods=("POST", "PUT"))
    assert await partition(policy=policy) != await partition(policy=policy, method="PUT")


async def test_stream_requested_by_accept_header():
    assert await partition() != await partition(headers=(JSON, ("accept", "text/event-stream")))
    assert wants_stream({"stream": True}, [])
    assert not wants_stream({"stream": "yes"}, [])
    assert wants_stream({}, [("accept", "text/event-stream")])


async def test_credentials_split_by_default():
    anonymous = await partition()
    alice = await partition(headers=(JSON, ("authorization", "Bearer alice")))
    bob = await partition(headers=(JSON, ("authorization", "Bearer bob")))
    assert len({anonymous, alice, bob}) == 3
    assert alice == await partition(headers=(JSON, ("authorization", "Bearer alice")))
    assert await partition(headers=(JSON, ("x-api-key", "alice"))) != await partition(
        headers=(JSON, ("api-key", "alice"))
    )


async def test_shared_auth_mode_ignores_credentials():
    policy = HttpCachePolicy(settings(auth_mode="shared"))
    alice = await partition(headers=(JSON, ("authorization", "Bearer alice")), policy=policy)
    assert alice == await partition(headers=(JSON, ("authorization", "Bearer bob")), policy=policy)
    assert alice == await partition(policy=policy)


async def test_tenant_header_only_when_configured():
    acme, globex = (JSON, ("x-tenant", "acme")), (JSON, ("x-tenant", "globex"))
    assert await partition(headers=acme) == await partition(headers=globex)
    policy = HttpCachePolicy(settings(tenant_header="X-Tenant"))
    assert await partition(headers=acme, policy=policy) != await partition(
        headers=globex, policy=policy
    )


async def test_extractors_sync_and_async():
    async def tenant(request, body):
        return request["user"]

    seen = []

    def question(request, body):
        seen.append(request)
        return body["ask"]["text"]

    policy = HttpCachePolicy(
        settings(),
        extract_query=question,
        extract_partition=tenant,
        extract_model=lambda r, b: "fixed",
    )
    body = b'{"ask": {"text": "Why?"}, "temperature": 1}'
    a = await policy.plan(request(body), {"user": "a"})
    b = await policy.plan(request(body), {"user": "b"})
    assert isinstance(a, CachePlan) and isinstance(b, CachePlan)
    assert a.query == "Why?" and a.metadata["model"] == "fixed"
    assert a.partition != b.partition
    assert seen == [{"user": "a"}, {"user": "b"}]
    # The custom question is masked wherever it is, so rewordings share the partition.
    c = await policy.plan(
        request(b'{"ask": {"text": "How come?"}, "temperature": 1}'), {"user": "a"}
    )
    assert isinstance(c, CachePlan) and c.partition == a.partition


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("extract_query", lambda r, b: 1 / 0),
        ("extract_query", lambda r, b: 42),
        ("extract_model", lambda r, b: 1 / 0),
        ("extract_partition", lambda r, b: 1 / 0),
    ],
)
async def test_failing_extractor_bypasses(name, fn):
    policy = HttpCachePolicy(settings(), **{name: fn})
    assert await policy.plan(request()) == Bypass(f"{name} failed")


def test_build_partition_and_credential_hash_are_stable():
    assert build_partition(method="post", path="/p") == build_partition(method="POST", path="/p")
    assert build_partition(method="POST", path="/p", tenant="a") != build_partition(
        method="POST", path="/p", trusted_tenant="a"
    )
    assert credential_hash([]) is None
    assert credential_hash([("authorization", "")]) is None
    h = credential_hash([("authorization", "Bearer secret")])
    assert h and "secret" not in h


# -- per-request control -------------------------------------------------------------------


def test_cache_directives():
    assert cache_directives([("cache-control", 'No-Cache, max-age="0"')]) == {
        "no-cache": None,
        "max-age": "0",
    }
    assert cache_directives([("pragma", "no-cache")]) == {"no-cache": None}
    assert cache_directives([("cache-control", "max-age=5"), ("pragma", "no-cache")]) == {
        "max-age": "5"
    }


@pytest.mark.parametrize(
    "headers",
    [[("cache-control", "no-cache")], [("pragma", "no-cache")], [("cache-control", "max-age=0")]],
)
async def test_refresh_skips_lookup(headers):
    p = await plan(headers=[JSON, ("authorization", "Bearer k"), *headers])
    assert isinstance(p, CachePlan) and not p.lookup and p.store


async def test_no_store_bypasses():
    assert await plan(headers=[JSON, ("cache-control", "no-store")]) == Bypass("no-store")


@pytest.mark.parametrize(
    ("raw", "max_ttl", "ttl", "store"),
    [
        ("60", 3600, 60, True),
        (" 60 ", 3600, 60, True),
        ("99999", 3600, 3600, True),
        ("0", 3600, None, False),
        ("-5", 3600, None, True),
        ("1.5", 3600, None, True),
        ("soon", 3600, None, True),
        ("٣", 3600, None, True),  # non-ASCII digits are not a TTL
        ("60", 0, None, True),  # max_ttl 0: per-request TTLs off
    ],
)
async def test_ttl_header(raw, max_ttl, ttl, store):
    policy = HttpCachePolicy(settings(max_ttl=max_ttl))
    key = ("authorization", "Bearer k")
    p = await plan(policy, headers=[JSON, key, ("x-semcache-ttl", raw)])
    assert isinstance(p, CachePlan)
    assert (p.ttl, p.store) == (ttl, store)


def test_can_replay_checks_content_coding():
    gz = StoredResponse(200, (("content-encoding", "gzip"),), b"...")
    plain = StoredResponse(200, (), b"...")
    assert CachePlan("q", "p", accept_encoding="gzip, br").can_replay(gz)
    assert not CachePlan("q", "p", accept_encoding="br").can_replay(gz)
    assert not CachePlan("q", "p").can_replay(gz)
    assert CachePlan("q", "p").can_replay(plain)


@pytest.mark.parametrize("mode", ["semantic", "turns"])
async def test_context_modes_but_exact_move_earlier_turns_out_of_the_partition(mode):
    skiing = [
        {"role": "user", "content": "I am going skiing"},
        {"role": "assistant", "content": "Fun!"},
    ]
    beach = [
        {"role": "user", "content": "I am going to the beach"},
        {"role": "assistant", "content": "Fun!"},
    ]
    exact = HttpCachePolicy(settings(context_mode="exact"))
    a = await exact.plan(request(chat("What should I pack?", messages=skiing)))
    b = await exact.plan(request(chat("What should I pack?", messages=beach)))
    assert isinstance(a, CachePlan) and isinstance(b, CachePlan)
    assert a.context is None and a.partition != b.partition

    semantic = HttpCachePolicy(settings(context_mode=mode))
    a = await semantic.plan(request(chat("What should I pack?", messages=skiing)))
    b = await semantic.plan(request(chat("What should I pack?", messages=beach)))
    assert isinstance(a, CachePlan) and isinstance(b, CachePlan)
    assert a.partition == b.partition  # the cache compares the contexts by meaning
    assert a.context == "user: I am going skiing\nassistant: Fun!"
    assert a.flight_key != b.flight_key
    # A first question has no context, and never shares a partition with a follow-up's instructions.
    first = await semantic.plan(request(chat("What should I pack?")))
    assert isinstance(first, CachePlan) and first.context is None


async def test_by_default_a_follow_up_after_the_same_conversation_with_chatter_hits():
    """The default context mode is turns: chatter around the same turns is the same
    conversation; a changed order number is another."""
    order = [
        {"role": "user", "content": "My order 48213 arrived with a cracked screen protector"},
        {"role": "assistant", "content": "Sorry! I can send a replacement for order 48213."},
    ]
    chatter = [
        {"role": "user", "content": "hello!"},
        {"role": "assistant", "content": "Hi, how can I help you today?"},
    ]
    other = [
        {"role": "user", "content": "My order 48231 arrived with a cracked screen protector"},
        order[1],
    ]
    stored = StoredResponse(200, (("content-type", "application/json"),), b'{"a": 1}')
    cache = SemanticCache(settings(threshold=0.8), embedder=HashingTestEmbedder())
    assert cache.settings.context_mode == "turns"
    policy = HttpCachePolicy(cache.settings)
    async with cache:
        engine = HttpCacheEngine(cache)
        first = await policy.plan(request(chat("How long will that take?", messages=order)))
        assert isinstance(first, CachePlan)
        await engine.store(first, stored)
        padded = await policy.plan(
            request(chat("How long will that take?", messages=[*chatter, *order]))
        )
        assert isinstance(padded, CachePlan)
        found = await engine.lookup(padded)
        assert found is not None and found.response.body == stored.body
        changed = await policy.plan(request(chat("How long will that take?", messages=other)))
        assert isinstance(changed, CachePlan)
        assert await engine.lookup(changed) is None
