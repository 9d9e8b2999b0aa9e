"""The access log through the real proxy: one JSON line per looked-at request on the
``semcache.access`` logger, when the operator switches it on."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from semcache import SemanticCache
from semcache.stores.memory_responses import MemoryResponseStore
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.servers import serve_asgi

from .processes import stop_proxy

CHAT = "/v1/chat/completions"


def chat(question: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


@contextmanager
def served(embedder: object, **settings: object) -> Iterator[httpx.Client]:
    fake = FakeLLM(latency=0.2)
    cache = SemanticCache(embedder=embedder, **settings)  # type: ignore[arg-type]
    with serve_asgi(fake.app) as upstream:
        app = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    found = [r for r in caplog.records if r.name == "semcache.access"]
    for record in found:
        assert json.loads(record.getMessage()) == record.semcache  # type: ignore[attr-defined]
    return [json.loads(r.getMessage()) for r in found]


def test_a_line_per_request_with_the_decision(
    real_embedder: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="semcache.access")
    with served(real_embedder, access_log=True) as client:
        miss = client.post(CHAT, json=chat("How do I reset my password?"))
        hit = client.post(CHAT, json=chat("How can I reset my password?"))
        other = client.post(CHAT, json=chat("How do I enable dark mode?"))
        rejected = client.post(CHAT, json=chat("How do I disable dark mode?"))
        bypass = client.post(CHAT, json=chat("anything"), headers={"Cache-Control": "no-store"})
        client.get("/healthz")  # not a cached path: no line
    assert [r.headers["x-semcache"] for r in (miss, hit, other, rejected, bypass)] == [
        "miss",
        "hit",
        "miss",
        "miss",
        "bypass",
    ]
    logged = lines(caplog)
    assert [line["decision"] for line in logged] == ["miss", "hit", "miss", "miss", "bypass"]
    first, second, _, turned_down, passed = logged

    usage = miss.json()["usage"]
    assert first["method"] == "POST" and first["path"] == CHAT and first["status"] == 200
    assert (first["input_tokens"], first["output_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    # The miss waited for the upstream (its injected latency).
    assert first["upstream_ms"] >= 200 and first["latency_ms"] >= first["upstream_ms"]
    assert first["tenant"] == "anonymous" and first["model"] == "gpt-4o-mini"

    assert second["entry"] == hit.headers["x-semcache-entry"]
    assert second["similarity"] == pytest.approx(float(hit.headers["x-semcache-similarity"]))
    assert second["source"] == "semantic"
    assert second["partition"] == first["partition"]
    assert second["tokens_saved"] == usage["total_tokens"]
    assert second["usd_saved"] > 0 and second["seconds_saved"] >= 0.2

    # A candidate the verifier turned down: its rule and similarity, and still a miss.
    assert turned_down["rule"] == "polarity" and 0 < turned_down["similarity"] < 1
    assert "entry" not in turned_down
    assert passed["reason"] == "no-store" and "partition" not in passed


def test_off_by_default(real_embedder: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="semcache.access")
    with served(real_embedder) as client:
        client.post(CHAT, json=chat("What is the boiling point of water?"))
        client.post(CHAT, json=chat("What is the boiling point of water?"))
    assert lines(caplog) == []


def test_the_proxy_command_writes_the_lines_to_stdout(upstream: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    env.update(SEMANTIC_CACHE_ACCESS_LOG="true", SEMANTIC_CACHE_EMBEDDER_TYPE="testing-hash")
    port = free_port()
    out = tmp_path / "stdout"
    args = [sys.executable, "-m", "semcache_proxy.cli", "--upstream", upstream, "--port", str(port)]
    with out.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(
                lambda: httpx.get(url + "/readyz").status_code == 200,
                timeout=60,
                what="the proxy answered /readyz",
            )
            for _ in range(2):
                httpx.post(url + CHAT, json=chat("What is the boiling point of water?"), timeout=30)
            wait_until(
                lambda: out.read_text().count('"decision"') >= 2,
                timeout=10,
                what="two access log lines",
            )
        finally:
            stop_proxy(proc)
    logged = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    assert [line["decision"] for line in logged] == ["miss", "hit"]


class SlowWrites(MemoryResponseStore):
    """Writes take :data:`WRITE_DELAY` seconds; reads are as fast as ever."""

    async def set(self, entry: Any, ttl: int | None = None) -> None:
        await asyncio.sleep(WRITE_DELAY)
        await super().set(entry, ttl)


WRITE_DELAY = 2.0


def test_the_latency_is_what_the_client_waited_not_the_store_after(
    real_embedder: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="semcache.access")
    # Budgets wide enough for the slow write to complete (it is still stored).
    settings = {"store_timeout_ms": 10_000, "lookup_timeout_ms": 20_000}
    with served(real_embedder, access_log=True, response_store=SlowWrites(), **settings) as c:
        c.post(CHAT, json=chat("What is the boiling point of water?"))
        assert (
            c.post(CHAT, json=chat("What is the boiling point of water?")).headers["x-semcache"]
            == "hit"
        )
    miss = lines(caplog)[0]
    # The answer went out before the write began; the write's delay is not in the line.
    assert miss["decision"] == "miss" and miss["latency_ms"] < WRITE_DELAY * 1000
