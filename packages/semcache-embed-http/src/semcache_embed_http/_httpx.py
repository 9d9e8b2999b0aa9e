"""httpx behind the :class:`~semcache_embed_http.Transport` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from semcache_embed_http._transport import HTTPReply, TransportError

__all__ = ["HttpxTransport"]


class HttpxTransport:
    """One ``httpx.AsyncClient`` (connection pool) for one base URL and event loop."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str], timeout: float) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=dict(headers), timeout=httpx.Timeout(timeout)
        )

    async def __call__(self, path: str, payload: Mapping[str, Any]) -> HTTPReply:
        try:
            response = await self._client.post(path, json=payload)
        except httpx.TransportError as exc:  # connect, read, write, pool timeouts; resets
            detail = str(exc)
            raise TransportError(
                f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            ) from exc
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HTTPReply(status=response.status_code, body=response.content, headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()
