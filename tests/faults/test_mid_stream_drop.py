"""The upstream drops its connection mid-response: nothing partial is stored or replayed.

The upstream here is a raw TCP server that sends a 200 with half of its body (a
``Content-Length`` body, or a chunked SSE stream after its first event) and then
resets the connection. Several identical requests run at once, so single-flight
followers wait on a leader whose answer breaks: every client must see a broken
response, none a replay, and the cache must hold nothing afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Iterator

import httpx
import pytest

from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.servers import serve_asgi

from .conftest import CHAT, chat, hashing_cache


def _completion(question: str, n: int) -> bytes:
    return json.dumps(
        {
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"Answer #{n} to: {question}"},
                }
            ],
        }
    ).encode()


def _event(text: str) -> bytes:
    return f"data: {json.dumps({'choices': [{'delta': {'content': text}}]})}\n\n".encode()


class DroppingUpstream:
    """Raw HTTP/1.1 upstream; while :attr:`drop` is set every answer is cut off by a reset."""

    def __init__(self) -> None:
        self.drop = True
        self.calls = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        self._thread.start()
        assert self._ready.wait(10), "the upstream did not start"
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = json.loads(await reader.readexactly(length))
                self.calls += 1
                question = body["messages"][-1]["content"]
                if body.get("stream"):
                    await self._stream(writer, question)
                else:
                    await self._json(writer, question)
                if self.drop:
                    # SO_LINGER 0: the close is a reset, as when a server or a link dies.
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, question: str) -> None:
        payload = _completion(question, self.calls)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(payload)}\r\n\r\n".encode()
            + (payload[: len(payload) // 2] if self.drop else payload)
        )
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, question: str) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        words = f"Answer #{self.calls} to: {question}".split(" ")
        events = [_event(w + " ") for w in words] + [b"data: [DONE]\n\n"]
        for i, event in enumerate(events):
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
            if self.drop and i == 0:
                return
        writer.write(b"0\r\n\r\n")
        await writer.drain()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_reset_mid_body_is_never_stored_or_replayed(stream: bool) -> None:
    upstream = DroppingUpstream()
    cache = hashing_cache()
    question = "what is the refund policy for damaged parcels"
    body = chat(question, stream=stream)
    with upstream.running() as upstream_url:
        app = create_semantic_cache_proxy_app(upstream_url, cache)
        with serve_asgi(app) as url:

            async def broken_round() -> list[BaseException | httpx.Response]:
                async with httpx.AsyncClient(base_url=url, timeout=30) as client:

                    async def one() -> httpx.Response:
                        response = await client.post(CHAT, json=body)
                        await response.aread()
                        return response

                    return await asyncio.gather(*(one() for _ in range(6)), return_exceptions=True)

            for outcome in asyncio.run(broken_round()):
                # Each client sees the break; none is handed a stored copy of half a body.
                assert isinstance(outcome, httpx.TransportError), outcome
            assert cache.counters["stores"] == 0
            assert cache.counters["exact_hits"] + cache.counters["semantic_hits"] == 0

            upstream.drop = False
            with httpx.Client(base_url=url, timeout=30) as client:
                healthy = client.post(CHAT, json=body)
                again = client.post(CHAT, json=body)
    assert healthy.status_code == 200 and healthy.headers["x-semcache"] == "miss"
    assert again.headers["x-semcache"] == "hit"
    assert again.content == healthy.content
    if stream:
        assert healthy.content.rstrip().endswith(b"data: [DONE]")
    else:
        assert healthy.json()["choices"][0]["message"]["content"].endswith(question)
    assert cache.counters["stores"] == 1
