"""A small asyncio HTTP/1.1 keep-alive client that times each response.

Each request goes out in one write (request line, headers and body together) on a
socket with ``TCP_NODELAY``: a client that writes headers and body separately
without it can wait ~40 ms per request on the peer's delayed ACK, which would swamp
the millisecond figures measured here. The client also records when the headers
and the first body byte arrived, for time-to-first-byte figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpConnection", "IncompleteResponse", "TimedResponse", "post_json"]


class IncompleteResponse(Exception):
    """The server closed the connection before the response was complete."""


@dataclass(frozen=True, slots=True)
class TimedResponse:
    """One response; times are ``time.perf_counter()`` values."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent_at: float
    headers_at: float
    first_byte_at: float
    done_at: float

    @property
    def latency(self) -> float:
        """Seconds from the request being written to the last body byte."""
        return self.done_at - self.sent_at

    @property
    def ttfb(self) -> float:
        """Seconds to the first body byte (the first event of a stream)."""
        return self.first_byte_at - self.sent_at

    @property
    def cache(self) -> str:
        return self.headers.get("x-semcache", "")

    def json(self) -> Any:
        return json.loads(self.body)


class HttpConnection:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, host: str, port: int, *, timeout: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader, self._writer = reader, writer

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> HttpConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> TimedResponse:
        """Send one request and read the whole response (within ``timeout``)."""
        if self._reader is not None and self._reader.at_eof():
            await self.close()  # the server closed the idle connection (keep-alive timeout)
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        sent_at = time.perf_counter()
        self._writer.write(raw)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._read(self._reader, sent_at, method == "HEAD")
        except BaseException:
            await self.close()  # the stream is in an unknown state: never reuse it
            raise
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def _read(
        self, reader: asyncio.StreamReader, sent_at: float, head: bool
    ) -> TimedResponse:
        try:
            head_bytes = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise IncompleteResponse("connection closed before the response headers") from exc
        headers_at = time.perf_counter()
        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        first_byte_at: float | None = None
        chunks: list[bytes] = []
        try:
            if head or status in (204, 304) or 100 <= status < 200:
                pass
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")  # no trailers are expected
                        break
                    data = await reader.readexactly(size + 2)
                    if first_byte_at is None:
                        first_byte_at = time.perf_counter()
                    chunks.append(data[:-2])
            elif "content-length" in headers:
                length = int(headers["content-length"])
                if length:
                    first = await reader.read(length)
                    if not first:
                        raise asyncio.IncompleteReadError(b"", length)
                    first_byte_at = time.perf_counter()
                    chunks.append(first)
                    if len(first) < length:
                        chunks.append(await reader.readexactly(length - len(first)))
            else:
                chunks.append(await reader.read())
                headers["connection"] = "close"
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise IncompleteResponse(f"connection closed mid-body ({exc!r})") from exc
        done_at = time.perf_counter()
        return TimedResponse(
            status=status,
            headers=headers,
            body=b"".join(chunks),
            sent_at=sent_at,
            headers_at=headers_at,
            first_byte_at=first_byte_at if first_byte_at is not None else done_at,
            done_at=done_at,
        )


async def post_json(
    conn: HttpConnection,
    path: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
) -> TimedResponse:
    """POST ``payload`` as JSON on ``conn``."""
    body = json.dumps(payload).encode()
    merged = {"Content-Type": "application/json", **(headers or {})}
    return await conn.request("POST", path, body, merged)
