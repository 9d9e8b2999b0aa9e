"""Steady, verified load through the proxy: every answer is checked, every second counted.

Used by the store-restart fault runs (:mod:`benchmarks.store_faults`). Each worker owns
one keep-alive connection and cycles through question groups (a question and its
paraphrases), non-streamed and streamed. An answer is correct when it is a complete
200 from the fake upstream that names a question of the same group: the upstream's
own answer on a miss, a stored answer of the group on a hit. Anything else (a
non-200, a broken or partial body, another group's answer) is an error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from benchmarks.httpclient import HttpConnection, IncompleteResponse, TimedResponse

__all__ = ["CHAT_PATH", "Outcome", "SteadyLoad", "answer_text", "chat_body"]

CHAT_PATH = "/v1/chat/completions"
_ANSWER_PREFIX = "Answer #"


def chat_body(question: str, *, model: str = "bench", stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": question}]}
    if stream:
        body["stream"] = True
    return body


def answer_text(response: TimedResponse, stream: bool) -> str:
    """The assistant's text in a completion or an SSE stream of chunks."""
    if not stream:
        return str(response.json()["choices"][0]["message"]["content"])
    parts = []
    saw_done = False
    for line in response.body.decode().splitlines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            saw_done = True
            continue
        parts.append(json.loads(data)["choices"][0]["delta"].get("content", ""))
    if not saw_done:
        raise ValueError("stream without its final [DONE] event")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float
    result: str  # hit, miss, bypass or error
    detail: str = ""


@dataclass
class SteadyLoad:
    """``workers`` connections cycling through ``groups`` until :meth:`stop`."""

    url: str
    groups: Sequence[Sequence[str]]
    workers: int = 8
    stream_every: int = 4
    """Every n-th request of a worker asks for a stream (0: never)."""
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": "Bearer load"})
    timeout: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._group_of = {q: i for i, group in enumerate(self.groups) for q in group}
        self._asks = [(q, i) for i, group in enumerate(self.groups) for q in group]

    def start(self) -> None:
        for n in range(self.workers):
            self._tasks.append(asyncio.get_running_loop().create_task(self._worker(n)))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _worker(self, n: int) -> None:
        parts = urlsplit(self.url)
        conn = HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=self.timeout)
        i = n * 7  # workers start at different places in the cycle
        try:
            while not self._stop.is_set():
                question, group = self._asks[i % len(self._asks)]
                stream = self.stream_every > 0 and i % self.stream_every == 0
                i += 1
                self.outcomes.append(await self._one(conn, question, group, stream))
        finally:
            await conn.close()

    async def _one(self, conn: HttpConnection, question: str, group: int, stream: bool) -> Outcome:
        body = json.dumps(chat_body(question, stream=stream)).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        try:
            response = await conn.request("POST", CHAT_PATH, body, headers)
        except (IncompleteResponse, OSError, TimeoutError) as exc:
            return Outcome(time.monotonic(), "error", f"{type(exc).__name__}: {exc}")
        now = time.monotonic()
        if response.status != 200:
            return Outcome(now, "error", f"status {response.status}: {response.body[:200]!r}")
        try:
            text = answer_text(response, stream)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Outcome(now, "error", f"unreadable answer ({exc}): {response.body[:200]!r}")
        named = text.split(" to: ", 1)[1] if text.startswith(_ANSWER_PREFIX) else None
        if named is None or self._group_of.get(named) != group:
            return Outcome(now, "error", f"wrong answer for {question!r}: {text!r}")
        return Outcome(now, response.cache or "none")

    # -- reading the results ---------------------------------------------------------

    def counts(self, start: float = 0.0, end: float = float("inf")) -> Counter[str]:
        return Counter(o.result for o in self.outcomes if start <= o.at < end)

    def hit_rate(self, start: float, end: float = float("inf")) -> float | None:
        c = self.counts(start, end)
        total = sum(c.values())
        return c["hit"] / total if total else None

    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == "error"]

    async def wait_for_hit_rate(
        self, target: float, since: float, *, window: float = 1.0, within: float = 60.0
    ) -> float | None:
        """Seconds after ``since`` until a ``window``-long span reached ``target`` hit rate
        (``None`` when not within ``within`` seconds). Polls the recorded outcomes."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            now = time.monotonic()
            rate = self.hit_rate(now - window, now)
            if now - window >= since and rate is not None and rate >= target:
                return now - since
            await asyncio.sleep(0.1)  # poll interval
        return None
