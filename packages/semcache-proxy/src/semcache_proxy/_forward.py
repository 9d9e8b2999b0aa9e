"""The forwarding ASGI app: every method and path to the upstream, streamed both ways."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
from starlette.types import Receive, Scope, Send

__all__ = ["HOP_BY_HOP", "Forwarder", "conflicting_framing", "framing_error"]

log = logging.getLogger("semcache.proxy")


# RFC 9110 section 7.6.1, plus headers the proxy re-creates itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


# The serving process sets these itself; forwarding the upstream's would duplicate them.
_SERVER_SET = frozenset({b"date", b"server"})


class _ClientGone(Exception):
    """The client left before its request body was complete: raised inside the body
    stream so httpx aborts the upstream request instead of finishing it."""


class _UpstreamBodyError(Exception):
    """The upstream failed after the response had started: the client must see a broken
    response (the connection is dropped), never a complete-looking one."""


class Forwarder:
    """Forwards to ``upstream`` with a shared ``httpx.AsyncClient``.

    The request body is streamed to the upstream as it arrives (memory stays bounded
    by a chunk); a body that arrived whole in one message is sent with its length.
    The client's own framing headers are dropped, so what the upstream is told always
    matches what it gets. A client that leaves mid-body aborts the upstream request.
    The response is read as a stream and passed on chunk by chunk, compressed bytes as
    they came (``Content-Encoding`` kept), so what reaches the client, what a cache keeps
    and the headers all agree. Failures before the response starts become a JSON 502 or
    504; a failure mid-body drops the connection. ``on_upstream`` receives the seconds to
    response headers (for metrics). ``mounts`` are ``(path prefix, base URL)`` pairs: a
    path under a prefix (whole segments, longest prefix first) goes to that base URL with
    the prefix taken off; every other path goes to ``upstream``.
    """

    def __init__(
        self,
        upstream: str,
        client_factory: Callable[[], httpx.AsyncClient],
        *,
        on_upstream: Callable[[float, int], None] | None = None,
        mounts: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.upstream = httpx.URL(upstream.rstrip("/"))
        self._upstream_text = upstream.rstrip("/")
        self.mounts = tuple(
            (prefix.rstrip("/"), httpx.URL(url.rstrip("/")))
            for prefix, url in sorted(mounts, key=lambda mount: -len(mount[0].rstrip("/")))
        )
        self._client_factory = client_factory
        self.client: httpx.AsyncClient | None = None
        self.on_upstream = on_upstream

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = self._client_factory()
        return self.client

    def target(self, path: str) -> tuple[httpx.URL, str]:
        """The upstream for ``path`` (as the client sent it) and the path it is asked for."""
        for prefix, url in self.mounts:
            if not prefix:  # "/": every path
                return url, path
            if path == prefix or path.startswith(prefix + "/"):
                return url, path[len(prefix) :]
        return self.upstream, path

    def destination(self, path: str) -> str:
        """Where a request for ``path`` goes, as a URL (the partition's destination): the
        default upstream's is the text it was given, as without mounts."""
        upstream = self.target(path)[0]
        return self._upstream_text if upstream is self.upstream else str(upstream)

    def _url(self, scope: Scope) -> httpx.URL:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        upstream, path = self.target(raw_path.split(b"?", 1)[0].decode("latin-1"))
        base_path = upstream.raw_path.decode("latin-1").split("?", 1)[0].rstrip("/")
        return upstream.copy_with(
            raw_path=(base_path + path).encode("latin-1")
            + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
        )

    def _request_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        connection_tokens = {
            token.strip().lower().encode()
            for name, value in scope["headers"]
            if name == b"connection"
            for token in value.decode("latin-1").split(",")
        }
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in HOP_BY_HOP
            and name not in connection_tokens
            and name not in (b"host", b"content-length")
        ]
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        url = self._url(scope)
        headers = self._request_headers(scope)
        headers.append((b"host", url.netloc))
        content: bytes | AsyncIterator[bytes]
        if first.get("more_body", False):
            content = _stream_body(first.get("body", b""), receive)  # httpx sends it chunked
        else:
            body: bytes = first.get("body", b"")
            if body or _has_framing(scope):
                headers.append((b"content-length", str(len(body)).encode()))
            content = body
        request = self._client().build_request(
            scope["method"], url, headers=headers, content=content
        )
        started = time.perf_counter()
        try:
            response = await self._client().send(request, stream=True)
        except _ClientGone:
            # Nobody to answer; the upstream saw a broken request, never a complete one.
            log.info("semcache proxy: the client left mid-body; upstream request aborted")
            return
        except httpx.TimeoutException as exc:
            await _json_error(
                send,
                504,
                "upstream_timeout",
                f"the upstream did not answer in time ({type(exc).__name__})",
            )
            return
        except httpx.HTTPError as exc:
            await _json_error(
                send,
                502,
                "upstream_unreachable",
                f"the upstream could not be reached ({type(exc).__name__})",
            )
            return
        if self.on_upstream is not None:
            self.on_upstream(time.perf_counter() - started, response.status_code)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name, value)
                        for name, value in response.headers.raw
                        if name.lower() not in HOP_BY_HOP and name.lower() not in _SERVER_SET
                    ],
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                log.warning("semcache proxy: upstream failed mid-response (%s)", type(exc).__name__)
                raise _UpstreamBodyError(str(exc)) from exc
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _stream_body(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone(message["type"])
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _has_framing(scope: Scope) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def conflicting_framing(scope: Scope) -> bool:
    """Both ``Transfer-Encoding`` and ``Content-Length``: the length of the body is
    ambiguous (RFC 9112 section 6.3, a request-smuggling vector), so it is refused."""
    names = {name for name, _ in scope["headers"]}
    return b"transfer-encoding" in names and b"content-length" in names


async def framing_error(send: Send) -> None:
    await _json_error(
        send,
        400,
        "conflicting_framing",
        "the request carries both Transfer-Encoding and Content-Length",
    )


async def _json_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"type": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
