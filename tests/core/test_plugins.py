import subprocess
import sys

import pytest

from semcache import PluginNotFoundError, Settings, plugins
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import HashingTestEmbedder


def test_core_import_pulls_no_heavy_dependency():
    code = (
        "import sys, semcache, semcache.cache, semcache.plugins;"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'sqlalchemy', 'asyncpg',"
        " 'redis', 'starlette', 'httpx', 'openai', 'hnswlib') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_embedder_chosen_by_name_through_entry_points():
    e = plugins.create_embedder(Settings(embedder_type="testing-hash", embedder_dimensions=64))
    assert isinstance(e, HashingTestEmbedder) and e.dimension == 64


def test_memory_stores_are_the_default():
    s = Settings()
    assert isinstance(plugins.create_vector_store(s, "m", 8), MemoryVectorStore)
    assert isinstance(plugins.create_response_store(s, "m", 8), MemoryResponseStore)


def test_missing_first_party_plugin_names_the_package(monkeypatch):
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    with pytest.raises(PluginNotFoundError, match="pip install semcache-store-pgvector"):
        plugins.create_vector_store(Settings(vector_store="pgvector"), "m", 8)


def test_auto_picks_the_store_whose_settings_are_configured():
    s = Settings.from_env({}, pg_uri="postgresql://x/y")
    assert (plugins.vector_store_name(s), plugins.response_store_name(s)) == ("pgvector", "memory")
    s = Settings.from_env({"SEMANTIC_CACHE_REDIS_URI": "redis://h/0"})
    assert (plugins.vector_store_name(s), plugins.response_store_name(s)) == ("memory", "redis")


def test_unknown_plugin_lists_installed_ones():
    with pytest.raises(PluginNotFoundError, match=r"no embedder plugin named 'nope'.*testing-hash"):
        plugins.create_embedder(Settings(embedder_type="nope"))


def test_plugins_registered_in_code():
    class MyPlugin:
        @plugins.hookimpl
        def semcache_create_embedder(self, name, settings):
            return HashingTestEmbedder(8, model_id=name)

    plugins.register("embedder", "mine", MyPlugin())
    try:
        assert plugins.create_embedder(Settings(embedder_type="mine")).model_id == "mine:8"
    finally:
        plugins._registered.clear()
