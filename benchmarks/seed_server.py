"""The seed (fastapi-semcache 0.4.6) as a reverse proxy, on the benchmark's ONNX model.

    <seed venv>/bin/python -m benchmarks.seed_server --upstream URL --port N \\
        --onnx-dir DIR --namespace NAME --info-file FILE

Runs under the seed's own virtual environment (Python 3.12, ``fastapi-semcache[proxy,
redis]``, ``onnxruntime``, ``tokenizers``), never under semcache's: it imports only the
seed and the model runtime. The seed's settings come from its ``SEMANTIC_CACHE_*``
environment (PostgreSQL, Redis, threshold). Its embedder is a ``BaseEmbedder``, the
seed's documented extension point, running the same exported ONNX file (fp32,
``model.onnx`` with the tokenizer beside it) that semcache's ``onnx`` backend runs,
with one intra-op thread, on a worker thread per call as the seed's own
sentence-transformers embedder does (``asyncio.to_thread``). ``--info-file`` receives
the Redis key prefix the seed derives from ``--namespace``, so the benchmark can delete
its keys afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

__all__ = ["main"]

_DIMENSION = 384


def _onnx_embedder(folder: Path, namespace: str) -> Any:
    import numpy as np
    import onnxruntime as ort
    from semanticcache.embedders import BaseEmbedder
    from tokenizers import Tokenizer

    meta = json.loads((folder / "meta.json").read_text())
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=int(meta["pad_id"]))
    tokenizer.enable_truncation(int(meta["max_length"]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    inputs: list[str] = list(meta["inputs"])

    def encode(texts: list[str]) -> list[list[float]]:
        encodings = tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        # The exported graph pools and normalises: its output is the sentence embedding.
        out = session.run(None, {k: feed[k] for k in inputs})[0]
        return [[float(x) for x in row] for row in out]

    class OnnxEmbedder(BaseEmbedder):  # type: ignore[misc]
        @property
        def embedding_dim(self) -> int:
            return _DIMENSION

        @property
        def cache_namespace(self) -> str:
            return namespace

        async def embed(self, texts: list[str]) -> list[list[float]]:
            if not texts:
                return []
            return await asyncio.to_thread(encode, texts)

    return OnnxEmbedder()


def main() -> None:
    import uvicorn
    from semanticcache import (
        SemanticCache,
        create_semantic_cache_proxy_app,
    )
    from semanticcache.stores.vector.storage_ids import (
        embedding_storage_ids,
    )

    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed_server")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--onnx-dir", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--info-file", type=Path, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    table, redis_prefix = embedding_storage_ids(args.namespace, _DIMENSION)
    # The response store puts its own prefix before the one derived from the namespace.
    keys = f"semanticcache:resp:{redis_prefix}:"
    args.info_file.write_text(json.dumps({"table": table, "redis_prefix": keys}))
    cache = SemanticCache(embedder=_onnx_embedder(args.onnx_dir, args.namespace))
    app = create_semantic_cache_proxy_app(upstream=args.upstream, cache=cache)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
