import json

from semcache.http import UpstreamBreaker


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
