"""The proxy runs on uvloop and httptools where installed, on asyncio and h11 where not."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.support.missing_modules import without_modules
from tests.support.polling import wait_until

from .processes import start_proxy, stop_proxy

CHAT = "/v1/chat/completions"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    return {
        **env,
        "SEMANTIC_CACHE_EMBEDDER_TYPE": "testing-hash",
        "SEMANTIC_CACHE_THRESHOLD": "0.8",
        "SEMANTIC_CACHE_VERIFIER": "none",
    }


def _serves_and_reports(upstream: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """The server stack /readyz reports, after a miss and a hit went through it."""
    proc, url = start_proxy(upstream, env=env, ready_within=60, cwd=cwd)
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "what is uvloop"}]}
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post(CHAT, json=body).headers["x-semcache"] == "miss"
            seen: list[str] = []

            def hit() -> bool:
                seen.append(client.post(CHAT, json=body).headers["x-semcache"])
                return seen[-1] == "hit"

            wait_until(hit, timeout=10, what="the answer was stored and served")
            server: dict[str, str] = client.get("/readyz").json()["server"]
        return server
    finally:
        stop_proxy(proc)


def test_proxy_runs_on_uvloop_and_httptools(upstream, tmp_path):
    pytest.importorskip("uvloop")
    pytest.importorskip("httptools")
    assert _serves_and_reports(upstream, _env(), tmp_path) == {
        "loop": "uvloop",
        "http": "httptools",
    }


def test_proxy_falls_back_to_asyncio_and_h11(upstream, tmp_path):
    env = without_modules(_env(), ["uvloop", "httptools"], tmp_path)
    assert _serves_and_reports(upstream, env, tmp_path) == {"loop": "asyncio", "http": "h11"}
