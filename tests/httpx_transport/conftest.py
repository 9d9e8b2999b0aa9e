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
