"""A framework-free fake LLM backend that every adapter's test app wires to its routes.

The routes (all POST) each adapter's test app must expose, behind the semantic cache
middleware and nothing else that changes requests or responses:

``/api/answer``
    ``backend.answer(body, headers)`` -> :class:`Reply` (JSON). Control headers:
    ``x-test-status`` (status code), ``x-test-set-cookie`` (adds a cookie),
    ``x-test-cache-control`` (response Cache-Control), ``x-test-vary`` (response Vary),
    ``x-test-body`` (``error``: a JSON ``{"error": ...}`` body; ``html``: an HTML page;
    ``empty``: no body), ``x-test-gate`` (wait for :meth:`Backend.release` before
    answering).
``/v1/chat/completions``
    Same as ``/api/answer`` for a non-streaming body; with ``"stream": true`` an SSE
    stream: ``backend.stream(headers)`` / ``backend.astream(headers)``.
``/api/stream``
    SSE from ``backend.stream(headers)`` (sync) or ``backend.astream(headers)`` (async):
    ``x-test-events`` events (default 3) then ``data: [DONE]``; with ``x-test-gate``
    the stream waits for :meth:`Backend.release` after its first event;
    ``x-test-stream-id`` names it in :attr:`Backend.streams`.
``/api/forever``
    SSE heartbeats until the client goes away: ``backend.forever(headers)`` /
    ``backend.aforever(headers)``.
``/api/background``
    ``backend.answer(...)``, plus a background task (the framework's own mechanism)
    calling ``backend.background_done(headers)`` after the response.
``/api/limited``
    ``backend.limited(body, headers)``: 429 while :attr:`Backend.rate_limited` (only to
    the ``Authorization`` in :attr:`Backend.limited_credential` when it is set), with
    :attr:`Backend.retry_after` as ``Retry-After`` when it is set.

Every response sets ``x-request-id`` and ``x-custom`` so replays can be checked (neither
is replayed).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["Backend", "Reply", "StreamState"]

GATE_TIMEOUT = 20.0  # seconds a gated route waits before giving up (a failing test, not a hang)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == "content-type":
                return value
        return "application/octet-stream"


@dataclass
class StreamState:
    events_sent: int = 0
    state: str = "running"  # running, completed, closed (ended before completing)


@dataclass
class Backend:
    """Counts calls and answers like an LLM API; thread-safe, shared with the test thread."""

    calls: int = 0
    rate_limited: bool = False
    limited_credential: str | None = None
    retry_after: str | None = None
    streams: dict[str, StreamState] = field(default_factory=dict)
    background: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    _gates: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- test-side controls ----------------------------------------------------------

    def gate(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        self.gate(name).set()

    def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> bool:
        """Poll ``predicate()`` until true or ``timeout``; for server-side effects."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return bool(predicate())

    # -- route behaviour ---------------------------------------------------------------

    def _count(self, body: bytes) -> int:
        with self._lock:
            self.calls += 1
            self.bodies.append(body)
            return self.calls

    def answer(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        n = self._count(body)
        gate = headers.get("x-test-gate")
        if gate:
            self.gate(gate).wait(GATE_TIMEOUT)
        return self._reply(n, body, headers)

    async def aanswer(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """:meth:`answer` for async apps: the gate is awaited without blocking the loop."""
        n = self._count(body)
        gate = headers.get("x-test-gate")
        if gate:
            await self._await_gate(gate)
        return self._reply(n, body, headers)

    def _reply(self, n: int, body: bytes, headers: Mapping[str, str]) -> Reply:
        payload = {
            "answer": f"answer #{n}",
            "n": n,
            "sha256": hashlib.sha256(body).hexdigest(),
            "length": len(body),
        }
        out = [
            ("content-type", "application/json"),
            ("x-request-id", f"req-{n}"),
            ("x-custom", "kept"),
        ]
        if headers.get("x-test-set-cookie"):
            out.append(("set-cookie", "session=abc; Path=/"))
        if headers.get("x-test-cache-control"):
            out.append(("cache-control", headers["x-test-cache-control"]))
        if headers.get("x-test-vary"):
            out.append(("vary", headers["x-test-vary"]))
        status = int(headers.get("x-test-status", "200"))
        kind = headers.get("x-test-body")
        if kind == "error":
            payload = {"error": {"message": f"overloaded #{n}", "type": "server_error"}}
        elif kind == "html":
            out[0] = ("content-type", "text/html; charset=utf-8")
            return Reply(status, out, f"<html><body>Bad gateway #{n}</body></html>".encode())
        elif kind == "empty":
            return Reply(status, out, b"")
        return Reply(status, out, json.dumps(payload).encode())

    def limited(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        limited = self.rate_limited and self.limited_credential in (
            None,
            headers.get("authorization"),
        )
        if limited:
            self._count(body)
            err = json.dumps({"error": {"type": "rate_limit", "message": "slow down"}}).encode()
            out = [("content-type", "application/json")]
            if self.retry_after is not None:
                out.append(("retry-after", self.retry_after))
            return Reply(429, out, err)
        return self.answer(body, headers)

    def background_done(self, headers: Mapping[str, str]) -> None:
        with self._lock:
            self.background.append(headers.get("x-test-stream-id", "task"))

    def stream_headers(self) -> list[tuple[str, str]]:
        return [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("x-custom", "kept"),
        ]

    def _stream_start(self, headers: Mapping[str, str]) -> tuple[StreamState, int, str | None, int]:
        stream_id = headers.get("x-test-stream-id") or f"s{next(self._ids)}"
        state = StreamState()
        with self._lock:
            self.streams[stream_id] = state
        n = self._count(b"")
        return state, int(headers.get("x-test-events", "3")), headers.get("x-test-gate"), n

    @staticmethod
    def _event(n: int, index: int) -> bytes:
        chunk = {
            "object": "chat.completion.chunk",
            "n": n,
            "choices": [{"delta": {"content": f"tok{index} "}}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    def stream(self, headers: Mapping[str, str]) -> Iterator[bytes]:
        state, count, gate, n = self._stream_start(headers)
        try:
            for index in range(count):
                if index == 1 and gate:
                    self.gate(gate).wait(GATE_TIMEOUT)
                yield self._event(n, index)
                state.events_sent += 1
            yield b"data: [DONE]\n\n"
            state.state = "completed"
        finally:
            if state.state != "completed":
                state.state = "closed"

    async def astream(self, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
        state, count, gate, n = self._stream_start(headers)
        try:
            for index in range(count):
                if index == 1 and gate:
                    await self._await_gate(gate)
                yield self._event(n, index)
                state.events_sent += 1
            yield b"data: [DONE]\n\n"
            state.state = "completed"
        finally:
            if state.state != "completed":
                state.state = "closed"

    def forever(self, headers: Mapping[str, str]) -> Iterator[bytes]:
        state, _, _, n = self._stream_start(headers)
        try:
            deadline = time.monotonic() + GATE_TIMEOUT
            while time.monotonic() < deadline:
                yield self._event(n, state.events_sent)
                state.events_sent += 1
                time.sleep(0.01)
        finally:
            state.state = "closed"

    async def aforever(self, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
        state, _, _, n = self._stream_start(headers)
        try:
            deadline = time.monotonic() + GATE_TIMEOUT
            while time.monotonic() < deadline:
                yield self._event(n, state.events_sent)
                state.events_sent += 1
                await asyncio.sleep(0.01)
        finally:
            state.state = "closed"

    async def _await_gate(self, name: str) -> None:
        # The gate is a threading.Event set from the test thread. Polling keeps the
        # wait cancellable; a worker thread blocked on Event.wait would not be.
        event = self.gate(name)
        deadline = time.monotonic() + GATE_TIMEOUT
        while not event.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
