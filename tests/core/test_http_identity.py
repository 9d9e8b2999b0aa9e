"""Who may see an answer: identity headers, answer-changing headers, stateful answers,
where a request goes, the proxy's default scope, and who may steer shared entries."""

from __future__ import annotations

import json

import pytest

from semcache import Settings
from semcache.http import CachePlan, HttpCachePolicy, HttpRequest
from semcache_proxy.settings import GENERATION_PATHS

JSON = ("content-type", "application/json")
CHAT = {"model": "m", "messages": [{"role": "user", "content": "What is my account balance?"}]}


def policy(**overrides):
    options = {k: overrides.pop(k) for k in ("paths", "destination") if k in overrides}
    return HttpCachePolicy(Settings.from_env({}, **overrides), **options)


async def plan(headers=(), body=CHAT, path="/v1/chat/completions", p=None) -> CachePlan:
    request = HttpRequest("POST", path, "", (JSON, *headers), json.dumps(body).encode())
    result = await (p or policy()).plan(request)
    assert isinstance(result, CachePlan), result
    return result


async def partition(*args, **kwargs) -> str:
    return (await plan(*args, **kwargs)).partition


@pytest.mark.parametrize(
    "header",
    ["cookie", "x-goog-api-key", "ocp-apim-subscription-key", "authorization", "x-api-key"],
)
async def test_identity_headers_split_the_partition(header):
    anonymous = await partition()
    alice = await partition([(header, "alice")])
    bob = await partition([(header, "bob")])
    assert len({anonymous, alice, bob}) == 3


async def test_an_applications_own_key_header_is_declared_by_setting():
    assert await partition([("x-token", "alice")]) == await partition()  # unknown to us
    p = policy(identity_headers="X-Token, X-Session")
    alice = await partition([("x-token", "alice")], p=p)
    assert alice != await partition([("x-token", "bob")], p=p)
    assert alice != await partition(p=p)
    bypass = HttpCachePolicy(Settings.from_env({}, identity_headers="X-Token", auth_mode="bypass"))
    assert bypass.precheck([("x-token", "alice")]) is not None


async def test_host_is_part_of_the_partition_in_a_middleware():
    a = await partition([("host", "tenant-a.example.com")])
    assert a != await partition([("host", "tenant-b.example.com")])
    assert a == await partition([("host", "Tenant-A.example.com")])


async def test_the_proxys_upstream_is_part_of_the_partition_not_the_host():
    one = policy(destination="https://api.openai.com")
    other = policy(destination="http://127.0.0.1:11434")
    assert await partition(p=one) != await partition(p=other)
    assert await partition([("host", "a")], p=one) == await partition([("host", "b")], p=one)


@pytest.mark.parametrize(
    "header",
    [
        "anthropic-version",
        "anthropic-beta",
        "openai-beta",
        "openai-organization",
        "openai-project",
        "accept-language",
    ],
)
async def test_headers_that_change_the_answer_split_the_partition(header):
    assert await partition([(header, "one")]) != await partition([(header, "two")])


async def test_stored_responses_are_per_credential_even_when_answers_are_shared():
    shared = policy(auth_mode="shared")
    body = {"model": "m", "input": "What is my account balance?"}
    for stored in ({}, {"store": True}, {"background": True, "store": False}):
        ask = {**body, **stored}
        alice = await partition([("authorization", "Bearer a")], ask, "/v1/responses", shared)
        bob = await partition([("authorization", "Bearer b")], ask, "/v1/responses", shared)
        assert alice != bob, stored
    unstored = {**body, "store": False}
    alice = await partition([("authorization", "Bearer a")], unstored, "/v1/responses", shared)
    assert alice == await partition(
        [("authorization", "Bearer b")], unstored, "/v1/responses", shared
    )
    assert await partition(body=body, path="/v1/responses") != await partition(
        body=unstored, path="/v1/responses"
    )  # store is part of the partition
    thread = await partition([("authorization", "Bearer a")], CHAT, "/v1/threads/runs", shared)
    assert thread != await partition(
        [("authorization", "Bearer b")], CHAT, "/v1/threads/runs", shared
    )


@pytest.mark.parametrize(
    ("path", "cached"),
    [
        ("/v1/chat/completions", True),
        ("/openai/deployments/gpt4/chat/completions", True),
        ("/v1/completions", True),
        ("/v1/responses", True),
        ("/v1/messages", True),
        ("/api/generate", True),
        ("/api/chat", True),
        ("/v1beta/models/gemini-2.0-flash:generateContent", True),
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent", True),
        ("/v1/embeddings", False),
        ("/v1/moderations", False),
        ("/v1/messages/count_tokens", False),
        ("/v1/messages/batches", False),
        ("/v1/threads", False),
        ("/v1/files", False),
        ("/v1/uploads", False),
        ("/api/embed", False),
        ("/v1beta/models/embedding-001:embedContent", False),
    ],
)
def test_the_proxys_default_scope_is_the_generation_endpoints(path, cached):
    assert policy(paths=GENERATION_PATHS).in_scope("POST", path) is cached
    assert policy().in_scope("POST", path)  # a middleware: its own prefix decides


async def test_anonymous_clients_cannot_refresh_or_pin_entries():
    refresh = ("cache-control", "no-cache")
    pin = ("x-semcache-ttl", "604800")
    anonymous = await plan([refresh, pin])
    assert anonymous.lookup and anonymous.ttl is None and anonymous.store
    keyed = await plan([refresh, pin, ("authorization", "Bearer k")])
    assert not keyed.lookup and keyed.ttl == 86400  # capped at the ttl setting
    assert not (await plan([("x-semcache-ttl", "0")])).store  # "do not store" is harmless
    everyone = policy(client_cache_control="all")
    assert not (await plan([refresh], p=everyone)).lookup
    nobody = policy(client_cache_control="none")
    assert (await plan([refresh, ("authorization", "Bearer k")], p=nobody)).lookup
    raised = policy(max_ttl=7 * 86400)
    assert (await plan([pin, ("authorization", "Bearer k")], p=raised)).ttl == 604800
