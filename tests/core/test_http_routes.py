"""Per-route policies and client controls in the HTTP rules (HttpCachePolicy.plan)."""

from __future__ import annotations

import json
from typing import Any

from semcache import Settings
from semcache.http import Bypass, CachePlan, HttpCachePolicy, HttpRequest, RoutePolicy

JSON = ("content-type", "application/json")
KEY = ("authorization", "Bearer k")

ROUTES = (
    RoutePolicy("*/embeddings", mode="exact", ttl=600),
    RoutePolicy("*/moderations", mode="off"),
    RoutePolicy("/v1/chat/*", threshold=0.95, ttl=120, tenant_headers=("X-Org",)),
    RoutePolicy("/v1/*", mode="off"),  # never reached for /v1/chat/...: first match wins
)


def policy(routes: tuple[RoutePolicy, ...] = ROUTES, **settings: Any) -> HttpCachePolicy:
    return HttpCachePolicy(
        Settings.from_env({}, **settings), paths=["*/chat/completions"], routes=routes
    )


async def plan(
    p: HttpCachePolicy, path: str, *headers: tuple[str, str], body: Any = None
) -> CachePlan | Bypass:
    data = json.dumps(body or {"model": "m", "input": "the quick brown fox"}).encode()
    return await p.plan(HttpRequest("POST", path, "", (JSON, *headers), data))


def test_routes_decide_the_scope_first_match_wins() -> None:
    p = policy()
    assert p.in_scope("POST", "/v1/embeddings")  # not in paths: the route brings it in
    assert p.in_scope("POST", "/v1/chat/completions")
    assert not p.in_scope("POST", "/v1/moderations")
    assert not p.in_scope("POST", "/v1/files")  # the last route: off
    assert p.in_scope("POST", "/v2/chat/completions")  # no route: the paths as before
    assert not p.in_scope("POST", "/v2/other")


async def test_an_off_route_cannot_be_dodged_with_percent_escapes() -> None:
    p = policy()
    assert await plan(p, "/v2/moder%61tions") == Bypass("route off")


async def test_an_exact_route_plans_exact_lookups_with_its_ttl() -> None:
    found = await plan(policy(), "/v1/embeddings")
    assert isinstance(found, CachePlan)
    assert found.exact and found.ttl == 600 and found.threshold is None


async def test_a_semantic_route_brings_its_threshold_and_ttl() -> None:
    found = await plan(policy(), "/v1/chat/completions")
    assert isinstance(found, CachePlan)
    assert not found.exact and found.threshold == 0.95 and found.ttl == 120
    # Without a route, the defaults: the cache's threshold and TTL.
    default = await plan(policy(()), "/v2/chat/completions")
    assert isinstance(default, CachePlan)
    assert default.threshold is None and default.ttl is None


async def test_a_clients_ttl_is_capped_at_the_routes_ttl() -> None:
    found = await plan(policy(), "/v1/chat/completions", KEY, ("x-semcache-ttl", "99999"))
    assert isinstance(found, CachePlan) and found.ttl == 120
    capped = await plan(
        policy(max_ttl=1000), "/v1/chat/completions", KEY, ("x-semcache-ttl", "99999")
    )
    assert isinstance(capped, CachePlan) and capped.ttl == 1000


async def test_route_tenant_values_add_to_the_partition_and_the_requester() -> None:
    p = policy()
    path = "/v1/chat/completions"
    acme = await plan(p, path, KEY, ("x-org", "acme"))
    acme_again = await plan(p, path, KEY, ("x-org", "acme"))
    globex = await plan(p, path, KEY, ("x-org", "globex"))
    none = await plan(p, path, KEY)
    assert isinstance(acme, CachePlan) and isinstance(acme_again, CachePlan)
    assert isinstance(globex, CachePlan) and isinstance(none, CachePlan)
    assert acme.partition == acme_again.partition
    assert len({acme.partition, globex.partition, none.partition}) == 3
    assert acme.requester != globex.requester
    assert acme.metadata["tenant"]


async def test_without_routes_or_controls_partitions_keep_their_keys() -> None:
    # Entries stored before routes and namespaces existed are still found: nothing new
    # is hashed. The keys below are what the rule gave before either existed.
    p = policy((), client_modes=True)
    anonymous = await plan(p, "/v1/chat/completions")
    keyed = await plan(p, "/v1/chat/completions", KEY)
    assert isinstance(anonymous, CachePlan) and isinstance(keyed, CachePlan)
    assert anonymous.partition == "db35b8bd794499bd9e64ec7879ebe03c"
    assert (keyed.partition, keyed.requester) == (
        "12f34ed7b3f2ca6fbc0a76df31e8201b",
        "a47519f41b429ed0ba2459fce9d2e231",
    )


async def test_a_namespace_is_hashed_only_when_the_operator_names_its_header() -> None:
    ns = ("x-semcache-namespace", "team-a")
    path = "/v2/chat/completions"
    off = policy(())
    on = policy((), namespace_header="X-Semcache-Namespace")
    plain, ignored = await plan(off, path, KEY), await plan(off, path, KEY, ns)
    narrowed = await plan(on, path, KEY, ns)
    assert isinstance(plain, CachePlan) and isinstance(ignored, CachePlan)
    assert isinstance(narrowed, CachePlan)
    assert plain.partition == ignored.partition != narrowed.partition
    assert plain.requester == narrowed.requester  # a namespace never dodges a 429 breaker


async def test_client_modes_only_when_allowed() -> None:
    path = "/v2/chat/completions"
    for allowed in (False, True):
        p = policy((), client_modes=allowed)
        read = await plan(p, path, KEY, ("x-semcache-mode", "read-only"))
        write = await plan(p, path, KEY, ("x-semcache-mode", "Write-Only"))
        odd = await plan(p, path, KEY, ("x-semcache-mode", "both"))
        assert isinstance(read, CachePlan) and isinstance(write, CachePlan)
        assert isinstance(odd, CachePlan)
        assert (read.lookup, read.store) == (True, not allowed)
        assert (write.lookup, write.store) == (not allowed, True)
        assert (odd.lookup, odd.store) == (True, True)
