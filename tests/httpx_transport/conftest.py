from collections.abc import Iterator

import pytest

from semcache_proxy.testing import FakeLLM
from tests.support.servers import serve_asgi


@pytest.fixture
def fake() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def upstream(fake: FakeLLM) -> Iterator[str]:
    """The fake OpenAI + Anthropic upstream on a loopback port (its base URL, no path)."""
    with serve_asgi(fake.app) as url:
        yield url


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    """A database of this test run's own on the shared PostgreSQL, dropped after."""
    from tests.support.pg_servers import create_database, drop_database

    uri = create_database()
    yield uri
    drop_database(uri)
