"""Fixtures that several test folders use (the helpers behind them are in ``tests.support``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_servers import (
    SHARED_REDIS_URI,
    delete_prefix,
    random_prefix,
    require_shared_redis,
)


@pytest.fixture(scope="session")
def shared_redis() -> str:
    """The shared Redis (6379 unless ``SEMCACHE_TEST_REDIS_URI`` says otherwise)."""
    require_shared_redis()
    return SHARED_REDIS_URI


@pytest.fixture
def redis_prefix(shared_redis: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted after."""
    prefix = random_prefix()
    yield prefix
    delete_prefix(shared_redis, prefix)
