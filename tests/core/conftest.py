import pytest

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder


@pytest.fixture
def embedder():
    return HashingTestEmbedder()


@pytest.fixture
async def cache(embedder):
    c = SemanticCache(embedder=embedder, threshold=0.8, verifier=None, batch_max_size=1)
    await c.start()
    yield c
    await c.close()
