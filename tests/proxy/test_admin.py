"""The admin API over a real server: JSON errors (never a 500), flush by what an
operator knows (path, model, tenant, credential), and partitions by the raw path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from semcache import SemanticCache
from semcache.stores.memory_responses import MemoryResponseStore
from semcache.stores.memory_vectors import MemoryVectorStore
from semcache.testing import FlakyStore, HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.pausing import PausingResponseStore, SilentAt
from tests.support.servers import serve_asgi
from tests.support.starts import HeldStart

from .conftest import make_proxy

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
ADMIN = "/_semcache/admin"
AUTH = {"Authorization": "Bearer s3cret"}


def chat(question: str, model: str = "gpt-4o-mini") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": question}]}


def _flaky_proxy(
    upstream: str,
    response_store: object,
    *,
    embedder: HashingTestEmbedder | None = None,
    **settings: object,
) -> tuple[object, SemanticCache]:
    embedder = HashingTestEmbedder() if embedder is None else embedder
    cache = SemanticCache(
        embedder=embedder,
        vector_store=MemoryVectorStore(embedder.dimension),
        response_store=response_store,  # type: ignore[arg-type]
        threshold=0.8,
        verifier=None,
        admin_token="s3cret",
        **settings,
    )
    return create_semantic_cache_proxy_app(upstream, cache), cache


def _error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["type"] == kind and body["error"]["message"]


def test_admin_errors_are_json_and_a_failing_store_is_a_503_never_a_500(upstream):
    flaky = FlakyStore(MemoryResponseStore())
    app, cache = _flaky_proxy(upstream, flaky)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        client.post(CHAT, json=chat("what is a semantic cache"))
        entry = client.post(CHAT, json=chat("what is a semantic cache")).headers["x-semcache-entry"]
        # Bad requests: 4xx with the JSON error, and nothing flushed.
        _error(client.get(f"{ADMIN}/stats"), 401, "unauthorized")
        _error(client.get(f"{ADMIN}/nope", headers=AUTH), 404, "not_found")
        _error(client.get(f"{ADMIN}/flush", headers=AUTH), 405, "method_not_allowed")
        flush = f"{ADMIN}/flush"
        _error(client.post(flush, content=b"{not json", headers=AUTH), 400, "bad_request")
        _error(client.post(flush, json=["model"], headers=AUTH), 400, "bad_request")
        _error(client.post(flush, json={"modle": "gpt-4o-mini"}, headers=AUTH), 400, "bad_request")
        _error(client.post(flush, json={"model": ""}, headers=AUTH), 400, "bad_request")
        _error(client.post(flush, json={"partition": 3}, headers=AUTH), 400, "bad_request")
        both = {"partition": "p", "model": "m"}
        _error(client.post(flush, json=both, headers=AUTH), 400, "bad_request")
        again = client.post(CHAT, json=chat("what is a semantic cache"))
        assert again.headers["x-semcache"] == "hit"

        # The store goes down: every admin call that needs it is a 503 JSON error.
        flaky.down = True
        _error(client.delete(f"{ADMIN}/entries/{entry}", headers=AUTH), 503, "cache_unavailable")
        _error(client.post(flush, headers=AUTH), 503, "cache_unavailable")
        by_model = {"model": "gpt-4o-mini"}
        _error(client.post(flush, json=by_model, headers=AUTH), 503, "cache_unavailable")
        _error(client.get(f"{ADMIN}/audit/{entry}", headers=AUTH), 503, "cache_unavailable")
        assert client.get(f"{ADMIN}/stats", headers=AUTH).json()["entries"] is None
        assert client.get("/readyz").status_code == 503
        # Requests still pass through, uncached.
        assert client.post(CHAT, json=chat("what is a semantic cache")).status_code == 200

        # An exception from the cache itself, and from the metrics: 503 JSON too.
        flaky.down = False

        async def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("boom")

        cache.stats = broken  # type: ignore[method-assign]
        _error(client.get(f"{ADMIN}/stats", headers=AUTH), 503, "cache_unavailable")
        app.metrics.export = lambda: 1 / 0  # type: ignore[attr-defined]
        _error(client.get("/metrics"), 503, "cache_unavailable")


@pytest.mark.parametrize("store_is", ["down", "silent"])
def test_feedback_while_the_store_is_down_or_silent_is_a_503_within_the_budget(upstream, store_is):
    # Not a 404: the answer may still be served, and the report is to be sent again.
    inner = PausingResponseStore()
    flaky = FlakyStore(inner)
    # The store's own timeout is a minute: only the lookup budget ends a silent call.
    app, _ = _flaky_proxy(upstream, flaky, lookup_timeout_ms=1000, store_timeout_ms=60_000)
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        client.post(CHAT, json=chat("what is a semantic cache"))
        hit = client.post(CHAT, json=chat("what is a semantic cache"))
        assert hit.headers["x-semcache"] == "hit"
        report = {
            "entry": hit.headers["x-semcache-entry"],
            "version": hit.headers["x-semcache-entry-version"],
        }
        if store_is == "down":
            flaky.down = True
        else:

            async def silent() -> None:  # the store took the read and never answers
                await asyncio.Event().wait()

            inner.after_read = silent
        answer = client.post(f"{ADMIN}/feedback", json=report, headers=AUTH)
        _error(answer, 503, "cache_unavailable")
        assert inner.after_read is None  # a silent store was called, and given up on
        flaky.down = False
        # Nothing was evicted; the report sent again is.
        assert (
            client.post(CHAT, json=chat("what is a semantic cache")).headers["x-semcache"] == "hit"
        )
        again = client.post(f"{ADMIN}/feedback", json=report, headers=AUTH)
        assert again.status_code == 200 and again.json()["evicted"] is True
        assert (
            client.post(CHAT, json=chat("what is a semantic cache")).headers["x-semcache"] == "miss"
        )


AdminCall = Callable[[httpx.Client, str, str], httpx.Response]

ADMIN_CALLS: dict[str, AdminCall] = {
    "delete": lambda client, entry, version: client.delete(
        f"{ADMIN}/entries/{entry}", headers=AUTH
    ),
    "flush everything": lambda client, entry, version: client.post(f"{ADMIN}/flush", headers=AUTH),
    "flush a partition": lambda client, entry, version: client.post(
        f"{ADMIN}/flush", json={"partition": "p"}, headers=AUTH
    ),
    "flush by model": lambda client, entry, version: client.post(
        f"{ADMIN}/flush", json={"model": "gpt-4o-mini"}, headers=AUTH
    ),
    "audit state": lambda client, entry, version: client.get(
        f"{ADMIN}/audit/{entry}", headers=AUTH
    ),
    "feedback": lambda client, entry, version: client.post(
        f"{ADMIN}/feedback", json={"entry": entry, "version": version}, headers=AUTH
    ),
}
"""The admin calls that need the cache's stores, on the entry (and answer) of a hit."""

SILENT_AT = {
    "delete": ("delete", 200),
    "flush everything": ("flush", 200),
    "flush a partition": ("flush", 200),
    "flush by model": ("partitions_where", 200),
    "audit state": ("get", 404),  # never audited
    "feedback": ("get", 200),
}
"""The store call each admin call is held at, and its status once the store answers."""

REMOVES = {"delete", "flush everything", "flush by model", "feedback"}
"""The admin calls that remove the answer of the hit (the partition flushed is another)."""


@pytest.mark.parametrize("call", list(ADMIN_CALLS))
def test_admin_calls_to_a_silent_store_are_a_503_within_the_budget(
    upstream: str, call: str
) -> None:
    # Not a 404 and not a hang: the store took the call and went silent, its own timeout
    # is a minute, the client's 20 s; only the lookup (or flush) budget ends the call.
    silent, status = SILENT_AT[call]
    store = SilentAt(silent)
    app, _ = _flaky_proxy(
        upstream, store, lookup_timeout_ms=500, flush_timeout_ms=500, store_timeout_ms=60_000
    )
    question = chat("what is a semantic cache")
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        client.post(CHAT, json=question)
        hit = client.post(CHAT, json=question)
        assert hit.headers["x-semcache"] == "hit"
        entry, version = hit.headers["x-semcache-entry"], hit.headers["x-semcache-entry-version"]
        entered, _ = store.pause_next()  # never released
        answer = ADMIN_CALLS[call](client, entry, version)
        _error(answer, 503, "cache_unavailable")
        assert "send it again" in answer.json()["error"]["message"]
        assert entry not in answer.json()["error"]["message"]
        assert entered.is_set()  # it was the store that kept it waiting
        # Nothing was done; sent again to a store that answers, it is.
        assert client.post(CHAT, json=question).headers["x-semcache"] == "hit"
        assert ADMIN_CALLS[call](client, entry, version).status_code == status
        after = client.post(CHAT, json=question).headers["x-semcache"]
        assert after == ("miss" if call in REMOVES else "hit")


@pytest.mark.parametrize("call", list(ADMIN_CALLS))
def test_admin_calls_while_the_cache_start_hangs_are_a_503_within_the_budget(
    upstream: str, call: str
) -> None:
    # The model never tells its vector size: the cache never starts, and only the lookup
    # budget ends the call (the stores' own timeout is a minute, the client's 20 s).
    embedder = HeldStart()
    app, cache = _flaky_proxy(
        upstream,
        MemoryResponseStore(),
        embedder=embedder,
        lookup_timeout_ms=500,
        flush_timeout_ms=500,
        store_timeout_ms=60_000,
    )
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        _error(ADMIN_CALLS[call](client, "e1", "v1"), 503, "cache_unavailable")
        assert embedder.probed.is_set() and not cache.started


class _NoIndex:
    """A response store without the optional partition index."""

    def __init__(self) -> None:
        self._inner = MemoryResponseStore()

    def __getattr__(self, name: str) -> object:
        if name == "partitions_where":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_flush_by_tags_on_a_store_without_an_index_is_a_501(upstream):
    app, _ = _flaky_proxy(upstream, _NoIndex())
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        client.post(CHAT, json=chat("a question to keep"))
        answer = client.post(f"{ADMIN}/flush", json={"model": "gpt-4o-mini"}, headers=AUTH)
        _error(answer, 501, "not_supported")
        assert client.post(CHAT, json=chat("a question to keep")).headers["x-semcache"] == "hit"


def _status(client: httpx.Client, path: str, question: str, key: str, model: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    response = client.post(path, json=chat(question, model), headers=headers)
    assert response.status_code == 200
    return response.headers["x-semcache"]


def test_flush_by_credential_model_and_path(upstream, fake):
    app = make_proxy(upstream, admin_token="s3cret")
    requests = [
        (CHAT, "sk-alice", "gpt-4o-mini"),
        (CHAT, "sk-bob", "gpt-4o-mini"),
        (CHAT, "sk-alice", "gpt-4o"),
        (COMPLETIONS, "sk-alice", "gpt-4o-mini"),
    ]
    question = "how do I rotate my api keys"
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:

        def cached() -> list[bool]:
            return [_status(client, *r[:1], question, *r[1:]) == "hit" for r in requests]

        assert [_status(client, p, question, k, m) for p, k, m in requests] == ["miss"] * 4
        assert cached() == [True, True, True, True]

        # The credential as the client sends it; the bare key works too.
        flushed = client.post(
            f"{ADMIN}/flush", json={"credential": "Bearer sk-bob"}, headers=AUTH
        ).json()
        assert flushed == {"flushed": 1, "where": {"credential": "<redacted>"}}
        assert cached() == [True, False, True, True]  # bob's answer is stored again

        by = {"model": "gpt-4o-mini", "path": CHAT, "credential": "sk-alice"}
        assert client.post(f"{ADMIN}/flush", json=by, headers=AUTH).json()["flushed"] == 1
        assert cached() == [False, True, True, True]

        by_model = {"model": "gpt-4o-mini"}
        assert client.post(f"{ADMIN}/flush", json=by_model, headers=AUTH).json()["flushed"] == 3
        assert cached() == [False, False, True, False]

        by_path = {"path": COMPLETIONS}
        assert client.post(f"{ADMIN}/flush", json=by_path, headers=AUTH).json()["flushed"] == 1
        none = {"model": "no-such-model"}
        assert client.post(f"{ADMIN}/flush", json=none, headers=AUTH).json()["flushed"] == 0
        assert cached() == [True, True, True, False]


def test_flush_by_tenant(upstream):
    app = make_proxy(upstream, admin_token="s3cret", tenant_header="x-tenant")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:

        def ask(tenant: str) -> str:
            body = chat("what are your opening hours")
            return client.post(CHAT, json=body, headers={"x-tenant": tenant}).headers["x-semcache"]

        assert (ask("acme"), ask("globex")) == ("miss", "miss")
        answer = client.post(f"{ADMIN}/flush", json={"tenant": "acme"}, headers=AUTH).json()
        assert answer == {"flushed": 1, "where": {"tenant": "<redacted>"}}
        assert (ask("acme"), ask("globex")) == ("miss", "hit")


@pytest.mark.parametrize("encoded", ["/v1/chat%2Fcompletions", "/v1/chat/%63ompletions"])
def test_partition_uses_the_raw_path_the_proxy_forwards(upstream, fake, encoded):
    app = make_proxy(upstream, admin_token="s3cret")
    question = "which path answered this question"
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        assert client.post(CHAT, json=chat(question)).headers["x-semcache"] == "miss"
        # Another request for the upstream: never the answer stored for the plain path.
        assert client.post(encoded, json=chat(question)).headers["x-semcache"] == "miss"
        assert client.post(encoded, json=chat(question)).headers["x-semcache"] == "hit"
        assert client.post(CHAT, json=chat(question)).headers["x-semcache"] == "hit"
        # Flushing by the raw path removes that answer only.
        by_path = {"path": encoded}
        assert client.post(f"{ADMIN}/flush", json=by_path, headers=AUTH).json()["flushed"] == 1
        assert client.post(CHAT, json=chat(question)).headers["x-semcache"] == "hit"
    assert fake.calls == 2
