import pytest

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.servers import serve_asgi


@pytest.fixture
def fake():
    return FakeLLM()


@pytest.fixture
def upstream(fake):
    with serve_asgi(fake.app) as url:
        yield url


def make_proxy(upstream, **options):
    settings_overrides = {k: options.pop(k) for k in list(options) if k in _SETTINGS}
    cache = SemanticCache(
        embedder=HashingTestEmbedder(), threshold=0.8, verifier=None, **settings_overrides
    )
    return create_semantic_cache_proxy_app(upstream, cache, **options)


_SETTINGS = {
    "auth_mode",
    "admin_token",
    "admin_path",
    "health_path",
    "ready_path",
    "metrics_path",
    "proxy_timeout",
    "max_body_bytes",
    "tenant_header",
    "upstream_429_threshold",
    "upstream_429_cooldown",
}


@pytest.fixture
def proxy_url(upstream):
    app = make_proxy(upstream, admin_token="s3cret")
    with serve_asgi(app) as url:
        yield url


@pytest.fixture(scope="session")
def real_embedder():
    """all-MiniLM-L6-v2 through the huggingface plugin, loaded once per session."""
    hf = pytest.importorskip("semcache_embed_hf", reason="semcache-embed-hf is not installed")
    try:
        embedder = hf.HuggingFaceEmbedder(threads=2)
    except Exception as exc:  # no weights package and no network
        pytest.skip(f"all-MiniLM-L6-v2 is not available: {exc}")
    return embedder
