"""The small protocol between :class:`HTTPEmbedder` and an HTTP client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from semcache.errors import SemcacheError

__all__ = ["HTTPReply", "Transport", "TransportError"]


class TransportError(SemcacheError):
    """No HTTP answer: connection refused or reset, name resolution failed, or a timeout.

    Raised by a :class:`Transport` only; the embedder reports it to its caller as an
    :class:`~semcache.errors.EmbeddingAPIError` with ``status=None``.
    """


@dataclass(frozen=True, slots=True)
class HTTPReply:
    """What a :class:`Transport` returns: status, raw body, headers with lower-case names."""

    status: int
    body: bytes
    headers: Mapping[str, str]


class Transport(Protocol):
    """POSTs one JSON payload to a path under the API's base URL.

    Raises :class:`TransportError` when no HTTP answer came back; any status is a reply.
    A transport belongs to the event loop it was opened in.
    """

    async def __call__(self, path: str, payload: Mapping[str, Any]) -> HTTPReply: ...

    async def aclose(self) -> None: ...
