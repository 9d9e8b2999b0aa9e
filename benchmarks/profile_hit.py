"""Where the time of a hit goes: py-spy samples of the proxy process under hit load.

py-spy (``pip install py-spy``) records the running proxy without touching it; each
sample is charged to the component of its innermost recognised frame (the model, the
vector search, the request rules, uvicorn...). Idle samples are left out, so the
figures are CPU time per request, in both the event-loop thread and the model's
worker thread.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["CATEGORIES", "PY_SPY", "categorise", "record", "summarise"]

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "embedding model (worker thread)",
        (
            "sentence_transformers",
            "torch/",  # py-spy names files by package path: torch/nn/modules/module.py
            "transformers/",
            "tokenizers",
            "semcache_embed_hf",
            "onnxruntime",
        ),
    ),
    (
        "vector search",
        (
            "semcache/stores/memory_vectors.py",
            "hnswlib",
            "usearch",
            "semcache_store_pgvector",
            "sqlalchemy",
            "asyncpg",
        ),
    ),
    ("response store", ("semcache/stores/", "semcache_store_redis", "redis/")),
    (
        "cache engine (lookup, breakers, batching, verifier)",
        (
            "semcache/cache.py",
            "semcache/breaker.py",
            "semcache/embedder.py",
            "semcache/singleflight.py",
            "semcache/verify",
        ),
    ),
    (
        "request rules (JSON parse, extract, partition hash)",
        (
            "semcache/http/policy.py",
            "semcache/http/extract.py",
            "semcache/http/partition.py",
            "semcache/text.py",
        ),
    ),
    (
        "stored-response decode and replay",
        ("semcache/http/responses.py", "semcache/http/engine.py", "semcache/types.py"),
    ),
    ("middleware (ASGI plumbing)", ("semcache_fastapi/", "starlette/")),
    ("metrics", ("semcache_proxy/_metrics.py", "prometheus_client")),
    (
        "proxy app (routing, forwarding)",
        ("semcache_proxy/", "benchmarks/proxy_server.py", "httpx", "httpcore", "anyio"),
    ),
    ("HTTP server (uvicorn, h11)", ("uvicorn/", "h11/")),
    # Waiting for the next event; py-spy's non-blocking mode does not always call it idle.
    ("event loop waiting in select()", ("EpollSelector.select", "selectors.py")),
    # The model's worker thread waking the event loop, and the executor around it.
    (
        "thread hand-off to and from the model",
        ("_write_to_self", "call_soon_threadsafe", "concurrent/futures", "threading.py"),
    ),
    ("asyncio event loop (scheduling, socket calls)", ("asyncio/",)),
)


def categorise(stack: str) -> str:
    """The category of one collapsed stack (``outer;...;inner``), innermost match first."""
    for frame in reversed(stack.split(";")):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other"


def record(
    pid: int, seconds: float, *, rate: int = 250, gil: bool = False
) -> tuple[Counter[str], int]:
    """Sample ``pid`` for ``seconds``; returns samples per collapsed stack and the total.

    ``gil``: only samples of the thread holding the GIL, i.e. the Python work that
    runs one thing at a time (the model's numeric kernels release the GIL)."""
    with tempfile.TemporaryDirectory(prefix="semcache-pyspy-") as tmp:
        out = Path(tmp) / "profile.txt"
        done = subprocess.run(
            [
                PY_SPY,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                *(["--gil"] if gil else []),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        if done.returncode or not out.exists():
            raise RuntimeError(f"py-spy failed: {done.stderr.strip() or done.stdout.strip()}")
        stacks: Counter[str] = Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] += int(count)
    return stacks, sum(stacks.values())


def summarise(stacks: Counter[str], *, rate: int, requests: int, top: int = 6) -> dict[str, Any]:
    """Per category: samples, share, and CPU milliseconds per request."""
    by_category: Counter[str] = Counter()
    for stack, count in stacks.items():
        by_category[categorise(stack)] += count
    total = sum(by_category.values()) or 1
    rows = [
        {
            "category": name,
            "samples": count,
            "share": count / total,
            "ms_per_request": count / rate / requests * 1000 if requests else None,
        }
        for name, count in by_category.most_common()
    ]
    leaves: Counter[str] = Counter()
    for stack, count in stacks.items():
        leaves[stack.split(";")[-1]] += count
    return {
        "samples": total,
        "rate_hz": rate,
        "requests": requests,
        "categories": rows,
        "top_leaf_frames": [
            {"frame": frame, "share": count / total} for frame, count in leaves.most_common(top)
        ],
        "top_stacks": [
            {"stack": stack, "samples": count} for stack, count in stacks.most_common(5 * top)
        ],
    }
