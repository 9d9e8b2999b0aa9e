"""`LLMJudge`: a chat model asked whether two requests need the same answer."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Mapping
from typing import Any

from semcache.errors import SettingsError
from semcache.settings import Settings
from semcache.verify.settings import JUDGE_MODEL, JUDGE_URL, JudgeSettings
from semcache_embed_http import HttpxTransport, Transport, TransportError, strip_suffix_path
from semcache_judge_llm._prompt import MAX_TEXT_CHARS, PROMPT, parse_answer, user_message

__all__ = ["DEFAULT_OLLAMA_URL", "LLMJudge"]

log = logging.getLogger("semcache.judge")

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
_PATHS = {"openai": "/v1/chat/completions", "ollama": "/api/chat"}
_SUFFIXES = {"openai": ("/v1",), "ollama": ("/api",)}


class LLMJudge:
    """Asks a chat model "do these two requests need the same answer?" and reads yes or no.

    ``api`` is ``openai`` (``POST /v1/chat/completions``, any OpenAI-compatible server)
    or ``ollama`` (``POST /api/chat``). Temperature 0, at most ``max_tokens`` generated.
    Anything but a clean "yes" or "no", an error status or no answer within ``timeout``
    seconds is no opinion (``None``). ``tokens`` and ``cost_usd`` total what the calls
    cost, from the usage each response reports (``price_per_million`` dollars a million
    tokens); ``errors`` counts calls without a usable answer. The API key goes into the
    ``Authorization`` header only; it is never logged.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api: str = "openai",
        api_key: str | None = None,
        timeout: float = 0.8,
        max_tokens: int = 4,
        price_per_million: float | None = None,
    ) -> None:
        if api not in _PATHS:
            raise ValueError(f"api must be one of {', '.join(_PATHS)}, not {api!r}")
        self.api = api
        self.base_url = strip_suffix_path(base_url, *_SUFFIXES[api])
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.price_per_million = price_per_million
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.tokens = 0
        self.cost_usd = 0.0
        self.errors = 0
        self._transport: Transport | None = None
        self._transport_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMJudge:
        s = settings.group(JudgeSettings)
        url = s.judge_url or (DEFAULT_OLLAMA_URL if s.judge_api == "ollama" else None)
        if url is None:
            raise SettingsError(f"the llm judge needs {JUDGE_URL} (the chat API's base URL)")
        if s.judge_model is None:
            raise SettingsError(f"the llm judge needs {JUDGE_MODEL} (a small chat model)")
        return cls(
            url,
            s.judge_model,
            api=s.judge_api,
            api_key=s.judge_api_key,
            timeout=s.judge_timeout_ms / 1000,
            max_tokens=s.judge_max_tokens,
            price_per_million=s.judge_price,
        )

    def __repr__(self) -> str:  # the key stays out of reprs and logs
        return f"LLMJudge({self.api}, {self.base_url!r}, model={self.model!r})"

    async def same_answer(self, query: str, candidate: str) -> bool | None:
        if len(query) > MAX_TEXT_CHARS or len(candidate) > MAX_TEXT_CHARS:
            return None
        messages = [
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": user_message(query, candidate)},
        ]
        try:
            reply = await self._current_transport()(_PATHS[self.api], self._payload(messages))
        except TransportError as exc:
            self.errors += 1
            log.debug("semcache: the judge at %s did not answer (%s)", self.base_url, exc)
            return None
        if reply.status != 200:
            self.errors += 1
            log.debug("semcache: the judge at %s answered HTTP %d", self.base_url, reply.status)
            return None
        try:
            body = json.loads(reply.body)
            text, used = self._read(body)
        except (ValueError, KeyError, IndexError, TypeError):
            self.errors += 1
            log.debug("semcache: the judge at %s sent an unreadable body", self.base_url)
            return None
        self._count(used)
        same = parse_answer(text)
        if same is None:
            self.errors += 1
        return same

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        owner = self._transport_loop() if self._transport_loop is not None else None
        self._transport_loop = None
        # A client opened on another (finished) loop cannot be closed from this one.
        if transport is not None and owner is asyncio.get_running_loop():
            await transport.aclose()

    def _payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        if self.api == "ollama":
            return {
                "model": self.model,
                "messages": messages,
                "stream": False,
                "options": {"temperature": 0, "num_predict": self.max_tokens},
            }
        return {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }

    def _read(self, body: object) -> tuple[object, int]:
        """The answer's text and the tokens the call used; raises for any other shape."""
        if not isinstance(body, Mapping):
            raise TypeError("not a JSON object")
        if self.api == "ollama":
            used = int(body.get("prompt_eval_count") or 0) + int(body.get("eval_count") or 0)
            return body["message"]["content"], used
        usage = body.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        used = int(
            usage.get("total_tokens")
            or int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        )
        return body["choices"][0]["message"]["content"], used

    def _count(self, tokens: int) -> None:
        self.tokens += max(tokens, 0)
        if self.price_per_million is not None:
            self.cost_usd += max(tokens, 0) * self.price_per_million / 1_000_000

    def _current_transport(self) -> Transport:
        loop = asyncio.get_running_loop()
        known = self._transport_loop() if self._transport_loop is not None else None
        if self._transport is None or known is not loop:
            # A client's connections belong to the loop that opened them.
            self._transport = HttpxTransport(
                self.base_url, headers=self._headers, timeout=self.timeout
            )
            self._transport_loop = weakref.ref(loop)
        return self._transport
