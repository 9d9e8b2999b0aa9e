import json
from email.utils import formatdate

from semcache import SemanticCache, Settings
from semcache.http import (
    CachePlan,
    Forward,
    HttpCacheEngine,
    HttpCachePolicy,
    HttpRequest,
    Replay,
    UpstreamBreaker,
    UpstreamBreakers,
)
from semcache.http.breaker import MAX_REQUESTERS, MAX_RETRY_AFTER, parse_retry_after
from semcache.testing import HashingTestEmbedder


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_opens_after_consecutive_429s_and_closes_after_cooldown():
    clock = Clock()
    breaker = UpstreamBreaker(3, 30.0, clock=clock)
    for status in (429, 429, 200, 429, 429):
        breaker.record(status)
    assert not breaker.is_open()  # the 200 broke the run
    breaker.record(429)
    assert breaker.is_open()
    assert breaker.retry_after() == 30.0
    clock.now += 10
    assert breaker.is_open() and breaker.retry_after() == 20.0
    clock.now += 20
    assert not breaker.is_open()
    # Cooldown over: one more 429 reopens at once, a success closes.
    breaker.record(429)
    assert breaker.is_open()
    clock.now += 31
    breaker.record(200)
    assert not breaker.is_open() and breaker.consecutive_429 == 0
    breaker.record(429)
    assert not breaker.is_open()


def test_zero_threshold_disables():
    breaker = UpstreamBreaker(0, 30.0)
    for _ in range(100):
        breaker.record(429)
    assert not breaker.is_open()


def test_rejection_is_a_503_with_retry_after():
    clock = Clock()
    breaker = UpstreamBreaker(1, 12.2, clock=clock)
    breaker.record(429)
    status, headers, body = breaker.rejection()
    assert status == 503
    assert dict(headers)["retry-after"] == "13"
    assert dict(headers)["content-length"] == str(len(body))
    assert dict(headers)["x-semcache"] == "miss"
    assert json.loads(body)["error"]["retry_after"] == 13


# -- one breaker per requester -------------------------------------------------------------


def breakers(threshold=3, cooldown=30.0, **kw):
    clock = Clock()
    return UpstreamBreakers(threshold, cooldown, clock=clock, wall_clock=lambda: WALL, **kw), clock


WALL = 1_700_000_000.0  # a fixed "now" for HTTP-date Retry-After values


def test_one_requesters_429s_open_only_its_own_breaker():
    board, _ = breakers()
    for _ in range(3):
        board.record("a", 429)
        board.record("b", 200)
    assert board.is_open("a") and not board.is_open("b") and not board.is_open("anyone")
    assert board.open_count() == 1
    status, headers, _ = board.rejection("a")
    assert status == 503 and dict(headers)["retry-after"] == "30"
    board.record("a", 200)  # a success closes it and forgets the requester
    assert not board.is_open("a") and board.open_count() == 0 and len(board) == 0


def test_zero_threshold_disables_every_requesters_breaker():
    board, _ = breakers(threshold=0)
    for _ in range(10):
        board.record("a", 429, "60")
    assert not board.is_open("a") and len(board) == 0


def test_retry_after_seconds_set_the_open_period():
    board, clock = breakers(threshold=2)
    board.record("a", 429, "120")  # only the 429 that opens the breaker sets the period
    board.record("a", 429, "2")
    assert board.retry_after("a") == 2.0
    assert dict(board.rejection("a")[1])["retry-after"] == "2"
    clock.now += 2
    assert not board.is_open("a")


def test_retry_after_http_date_sets_the_open_period():
    board, _ = breakers(threshold=1)
    board.record("a", 429, formatdate(WALL + 45, usegmt=True))
    assert board.retry_after("a") == 45.0
    assert dict(board.rejection("a")[1])["retry-after"] == "45"


def test_a_retry_after_in_the_past_or_unreadable_falls_back_to_the_cooldown():
    for value in ("soon", "-5", "1e9", "", "nan"):
        board, _ = breakers(threshold=1, cooldown=7.0)
        board.record("a", 429, value)
        assert board.retry_after("a") == 7.0, value
    board, _ = breakers(threshold=1, cooldown=7.0)
    board.record("a", 429, formatdate(WALL - 60, usegmt=True))
    assert not board.is_open("a")  # the date has passed: try again now


def test_retry_after_is_capped():
    board, _ = breakers(threshold=1, cooldown=30.0)
    board.record("a", 429, "86400")
    assert board.retry_after("a") == MAX_RETRY_AFTER == 600.0
    long_cooldown, _ = breakers(threshold=1, cooldown=120.0)
    long_cooldown.record("a", 429, "86400")
    assert long_cooldown.retry_after("a") == 1200.0  # ten cooldowns, when that is longer


def test_parse_retry_after():
    assert parse_retry_after("3", now=WALL) == 3.0
    assert parse_retry_after(" 0 ", now=WALL) == 0.0
    assert parse_retry_after(formatdate(WALL + 10, usegmt=True), now=WALL) == 10.0
    assert parse_retry_after(formatdate(WALL - 10, usegmt=True), now=WALL) == 0.0
    for value in (None, "", "later", "-1", "inf", "1e3"):
        assert parse_retry_after(value, now=WALL) is None, value


def test_the_map_of_requesters_is_bounded():
    assert MAX_REQUESTERS == 10_000
    board, _ = breakers(threshold=2, max_requesters=50)
    board.record("tripped", 429)
    board.record("tripped", 429)
    for i in range(10_000):  # a flood of distinct keys, one 429 each
        board.record(f"key-{i}", 429)
    assert len(board) <= 50
    assert board.is_open("tripped")  # closed breakers were dropped first
    assert board.get("key-0") is None and board.get("key-9999") is not None


def test_eviction_order_expired_then_counting_then_the_oldest_open():
    board, clock = breakers(threshold=2, max_requesters=3)
    for key in ("a", "b", "c", "d"):
        board.record(key, 429)
        board.record(key, 429)
        clock.now += 1
    # All open: the one opened first went.
    assert board.get("a") is None and board.open_count() == 3 == len(board)
    clock.now += 60  # b, c and d are closed again (but remember their 429s)
    board.record("e", 429)
    board.record("f", 429)
    assert board.get("b") is None and board.get("c") is None
    board.record("g", 429)  # a breaker whose open period is over goes first...
    assert board.get("d") is None and board.get("e") is not None
    board.record("h", 429)  # ...then the one counting with the oldest 429
    assert board.get("e") is None and board.get("f") is not None and len(board) == 3


# -- who the requester is --------------------------------------------------------------------


def _request(*headers):
    body = b'{"query": "What is the capital of France?"}'
    return HttpRequest(
        "POST", "/v1/ask", "", (("content-type", "application/json"), *headers), body
    )


async def _requester(policy, *headers, native=None):
    plan = await policy.plan(_request(*headers), native)
    assert isinstance(plan, CachePlan)
    return plan.requester


async def test_the_requester_is_the_credential_the_tenant_or_anonymous():
    policy = HttpCachePolicy(Settings.from_env({}, tenant_header="X-Tenant"))
    anonymous = await _requester(policy)
    assert anonymous == await _requester(policy, ("x-other", "1"))
    assert anonymous == CachePlan("q", "p").requester  # a plan built by hand is anonymous
    alice = await _requester(policy, ("authorization", "Bearer alice"))
    bob = await _requester(policy, ("authorization", "Bearer bob"))
    assert len({anonymous, alice, bob}) == 3
    assert alice == await _requester(policy, ("authorization", "Bearer alice"))
    assert "alice" not in alice  # a hash, never the credential
    acme = await _requester(policy, ("x-tenant", "acme"))
    assert acme not in (anonymous, await _requester(policy, ("x-tenant", "globex")))


async def test_the_requester_includes_the_applications_tenant():
    policy = HttpCachePolicy(Settings.from_env({}), extract_partition=lambda r, b: r)
    assert await _requester(policy, native="org-1") != await _requester(policy, native="org-2")


async def test_shared_mode_still_tells_credentials_apart():
    # One cache for everyone, but a key out of credit must not stop the others.
    policy = HttpCachePolicy(Settings.from_env({}, auth_mode="shared"))
    assert await _requester(policy, ("x-api-key", "a")) != await _requester(
        policy, ("x-api-key", "b")
    )


# -- the engine asks the breaker of the plan's requester ---------------------------------------


def _cache(**overrides):
    settings = Settings.from_env(
        {}, threshold=0.8, vector_store="memory", response_store="memory", **overrides
    )
    return SemanticCache(settings, embedder=HashingTestEmbedder())


def _plan(requester, question="Why is the sky blue?"):
    return CachePlan(question, "partition", requester=requester)


async def test_a_miss_feeds_and_consults_its_own_requesters_breaker():
    async with _cache(upstream_429_threshold=2, upstream_429_cooldown=30.0) as cache:
        engine = HttpCacheEngine(cache)
        for _ in range(2):
            forward = await engine.begin(_plan("a"))
            assert isinstance(forward, Forward)
            forward.start(429, [("Retry-After", "5"), ("content-type", "application/json")])
            forward.abort()
            await forward.settled()
        rejected = await engine.begin(_plan("a", "Another question?"))
        assert isinstance(rejected, Replay) and rejected.status == 503
        assert dict(rejected.headers)["retry-after"] == "5"
        assert isinstance(await engine.begin(_plan("b")), Forward)
        assert engine.breakers.open_count() == 1
