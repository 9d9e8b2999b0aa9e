"""One cache process for the two-process test, configured from SEMANTIC_CACHE_* variables.

Reads one JSON command per line on stdin and answers one JSON line on stdout:
``{"op": "store", "q": ..., "a": ..., "p": ...}`` -> ``{"entry_id": ...}``;
``{"op": "lookup", "q": ..., "p": ...}`` -> ``{"payload": ..., "source": ...}`` or ``null``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from semcache import SemanticCache


async def serve() -> None:
    loop = asyncio.get_running_loop()
    async with SemanticCache(verifier=None) as cache:
        print(json.dumps({"ready": True}), flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            cmd = json.loads(line)
            result: Any
            if cmd["op"] == "store":
                entry_id = await cache.store(cmd["q"], cmd["a"].encode(), partition=cmd["p"])
                result = {"entry_id": entry_id}
            else:
                hit = await cache.lookup(cmd["q"], partition=cmd["p"])
                result = hit and {"payload": hit.payload.decode(), "source": hit.source}
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())
