"""One error hierarchy: every public exception of every package is a SemcacheError, and
the shared ones are defined once, in semcache.errors, and exported from semcache."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import semcache
from semcache import errors
from semcache.embedder import BaseEmbedder, MicroBatchingEmbedder, resolve_dimension
from semcache.testing.embedders import HashingTestEmbedder

ROOT = Path(__file__).resolve().parents[2]
IMPORT_PACKAGES = sorted(
    p.name for p in (ROOT / "packages").glob("*/src/*") if (p / "__init__.py").is_file()
)


def test_the_shared_errors_are_exported_from_semcache() -> None:
    for name in errors.__all__:
        assert getattr(semcache, name) is getattr(errors, name)
        assert name in semcache.__all__
        assert issubclass(getattr(errors, name), errors.SemcacheError)


def test_the_hierarchy() -> None:
    assert issubclass(errors.EmbeddingAuthError, errors.EmbeddingAPIError)
    assert issubclass(errors.EmbeddingAPIError, errors.EmbeddingError)
    assert issubclass(errors.EmbeddingModelError, errors.EmbeddingError)
    # A missing key is both a key problem and a configuration problem.
    assert issubclass(errors.MissingAPIKeyError, errors.EmbeddingAuthError)
    assert issubclass(errors.MissingAPIKeyError, errors.SettingsError)
    assert issubclass(errors.SettingsError, ValueError)
    exc = errors.EmbeddingAPIError("boom", provider="acme", status=503)
    assert (exc.provider, exc.status, str(exc)) == ("acme", 503, "boom")


@pytest.mark.parametrize("package", IMPORT_PACKAGES)
def test_every_public_exception_is_a_semcache_error(package: str) -> None:
    module = importlib.import_module(package)
    for name in getattr(module, "__all__", []):
        value = getattr(module, name)
        if inspect.isclass(value) and issubclass(value, BaseException):
            assert issubclass(value, errors.SemcacheError), f"{package}.{name}"
            # A package's own error is specific to it and derives from a shared one.
            if value.__module__ != "semcache.errors":
                assert value.__name__ not in errors.__all__, f"{package}.{name} shadows one"


class _Probed(BaseEmbedder):
    """An embedder that learns its size only when asked."""

    model_id = "probed"

    def __init__(self) -> None:
        self.probes = 0

    @property
    def dimension(self) -> int:  # type: ignore[override]
        if not self.probes:
            raise errors.EmbedderNotReadyError("not probed")
        return 5

    async def probe_dimension(self) -> int:
        self.probes += 1
        return 5

    async def embed(self, texts: object) -> np.ndarray:  # type: ignore[override]
        return np.ones((len(texts), 5), dtype=np.float32)  # type: ignore[arg-type]


async def test_resolve_dimension_awaits_the_probe_when_there_is_one() -> None:
    plain = HashingTestEmbedder(dimension=8)
    assert await resolve_dimension(plain) == 8
    assert await plain.probe_dimension() == 8  # BaseEmbedder's default: no I/O
    probed = _Probed()
    wrapped = MicroBatchingEmbedder(probed)
    assert await resolve_dimension(wrapped) == 5 and probed.probes == 1


async def test_the_cache_resolves_the_dimension_before_building_the_stores() -> None:
    probed = _Probed()
    async with semcache.SemanticCache(embedder=probed, verifier=None) as cache:
        assert probed.probes == 1
        assert await cache.store("hello there", b"hi")
