"""The proxy as ``semcache-proxy`` serves it, plus one read-only route for the benchmark.

    python -m benchmarks.proxy_server [--log-level warning]

Settings come from ``SEMANTIC_CACHE_*`` like the CLI's (one worker). Two routes are
added for the benchmark; every other request goes to the proxy unchanged:

- ``GET /_bench/embeddings``: how many texts the embedder has embedded and how many
  model calls it made, so the benchmark can check that a miss embeds its question
  once and an exact hit not at all; and whether the embedded vector store is still
  building an HNSW index (``null`` for other stores);
- ``POST /_bench/embed`` (body: the text): embeds the normalised text with the proxy's
  own embedder, as a lookup would, and answers the seconds it took, so bare embedding
  time is measured in the same process, thread and model as the cache's.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from semcache import Settings
from semcache.text import normalize_query
from semcache_proxy import ProxySettings, SemanticCacheProxy, create_semantic_cache_proxy_app

__all__ = ["EMBEDDINGS_PATH", "EMBED_PATH", "CountingProxy", "main"]

EMBEDDINGS_PATH = "/_bench/embeddings"
EMBED_PATH = "/_bench/embed"


class CountingProxy:
    """ASGI wrapper: answers :data:`EMBEDDINGS_PATH`, passes everything else on."""

    def __init__(self, proxy: SemanticCacheProxy) -> None:
        self.proxy = proxy
        self.bench_texts = 0
        """Texts embedded for :data:`EMBED_PATH`, left out of the counts."""

    def counts(self) -> dict[str, Any]:
        embedder: Any = self.proxy.cache.embedder
        model_calls = getattr(embedder, "model_calls", None)
        inner = getattr(embedder, "inner", embedder)  # under the micro-batcher
        texts = getattr(inner, "texts_embedded", None)
        calls = getattr(inner, "calls", None)
        return {
            "texts": -1 if texts is None else int(texts) - self.bench_texts,
            "model_calls": int(model_calls if model_calls is not None else (calls or 0)),
            "index_building": self._index_building(),
        }

    def _index_building(self) -> bool | None:
        # The embedded store's partitions (a private attribute: benchmark use only).
        parts = getattr(self.proxy.cache.vector_store, "_parts", None)
        if not isinstance(parts, dict):
            return None
        return any(getattr(part, "ann_building", False) for part in parts.values())

    async def embed_seconds(self, receive: Any) -> dict[str, float]:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        text = normalize_query(b"".join(chunks).decode())
        await self.proxy.cache.start()
        embedder: Any = self.proxy.cache.embedder
        started = time.perf_counter()
        await embedder.embed([text])
        self.bench_texts += 1
        return {"seconds": time.perf_counter() - started}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in (EMBEDDINGS_PATH, EMBED_PATH):
            if scope["path"] == EMBED_PATH:
                result: dict[str, Any] = await self.embed_seconds(receive)
            else:
                result = self.counts()
            body = json.dumps(result).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.proxy(scope, receive, send)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy_server")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    settings = Settings.from_env()
    proxy = settings.group(ProxySettings)
    app = CountingProxy(create_semantic_cache_proxy_app(settings=settings))
    # The same server settings as the CLI's uvicorn.run (one worker, lifespan on).
    uvicorn.run(
        app,
        host=proxy.proxy_host,
        port=proxy.proxy_port,
        log_level=args.log_level,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
