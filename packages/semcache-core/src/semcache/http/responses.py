"""Which responses may be stored, how they are stored, and how they are replayed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from semcache.http.bodies import body_not_storable, content_type_not_storable
from semcache.http.headers import (
    HEADER_ENTRY,
    HEADER_ENTRY_VERSION,
    HEADER_SIMILARITY,
    HEADER_STATUS,
    OWN_HEADERS,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HOP_BY_HOP_HEADERS",
    "PER_RESPONSE_HEADERS",
    "REPLAYED_HEADERS",
    "ResponseRecorder",
    "StoredResponse",
    "accepts_encoding",
    "is_streaming_content_type",
    "response_not_cacheable",
    "split_sse_events",
    "storable_headers",
]

Headers = Sequence[tuple[str, str]]

DEFAULT_MAX_RESPONSE_BYTES = 8 << 20
"""Responses larger than this are passed on but not stored."""

HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

PER_RESPONSE_HEADERS = frozenset(
    {
        # Framing and per-delivery values: the server sets them again for the replay.
        "content-length",
        "date",
        "server",
        "age",
        "set-cookie",
        "set-cookie2",
        # Ours, recomputed on every answer.
        *OWN_HEADERS,
        # Ids and timings of the original upstream call, meaningless on a replay.
        "x-request-id",
        "request-id",
        "openai-processing-ms",
        "x-process-time",
        "cf-ray",
        "retry-after",
    }
)
"""Never replayed (all outside :data:`REPLAYED_HEADERS`); for callers that filter headers."""

REPLAYED_HEADERS = frozenset(
    {
        # What the body is: a client needs these to read it.
        "content-type",
        "content-encoding",
        "content-language",
        # How intermediaries may keep and pass it on (no identity in them).
        "cache-control",
        "x-accel-buffering",
        # The version of the wire format of the body (OpenAI: "2020-10-01").
        "openai-version",
    }
)
"""The only headers of a stored answer that are sent again on a hit (an allowlist).

Not replayed, among others: organisation and project ids (``openai-organization``,
``openai-project``, ``anthropic-organization-id``), request and trace ids
(``x-request-id``, ``request-id``, ``cf-ray``, ``traceparent``, ``apim-request-id``),
timings (``openai-processing-ms``), rate-limit state (``x-ratelimit-*``,
``anthropic-ratelimit-*``, ``retry-after``), cookies, CORS and ``Vary`` headers, and any
custom header of the app: they describe the original call and its caller, not the
answer. The SDKs of OpenAI, Anthropic, Gemini and Ollama read none of them to parse an
answer. OpenAI's and Anthropic's clients expose the request id when there is one and
accept its absence.
"""

_STORED_STATUSES = frozenset({200, 203})

_STREAMING_TYPES = frozenset(
    {"text/event-stream", "application/x-ndjson", "application/ndjson", "application/jsonl"}
)

_MAGIC = b"SCR1"  # stored-response format marker and version
_SSE_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_REPLAY_CHUNK = 64 << 10


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _tokens(value: str | None) -> set[str]:
    if not value:
        return set()
    return {part.split("=", 1)[0].strip().lower() for part in value.split(",") if part.strip()}


def is_streaming_content_type(content_type: str | None) -> bool:
    """SSE or newline-delimited JSON: a body meant to be read while it is written."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in _STREAMING_TYPES


def response_not_cacheable(
    status: int, headers: Headers, *, vary_partitioned: Collection[str] = ()
) -> str | None:
    """Why a response must not be stored, judged on its head, or ``None`` when it may be.

    Stored: status 200 or 203 (not 201, 202, 204 or any other), a content type the cache
    can judge (see :mod:`semcache.http.bodies`), without ``Set-Cookie``,
    ``Cache-Control: private`` or ``no-store``, trailers, or a ``Vary`` naming anything
    but ``Accept-Encoding``: an answer that depends on another request header is not
    stored at all, unless it is named in ``vary_partitioned``: the (lower-case) request
    headers whose values are already part of the partition the answer is stored in. The
    body is judged afterwards, by :func:`semcache.http.bodies.body_not_storable`.
    """
    if status not in _STORED_STATUSES:
        return f"status {status}"
    names = {name for name, _ in headers}
    if "set-cookie" in names or "set-cookie2" in names:
        return "set-cookie"
    directives: set[str] = set()
    varies: set[str] = set()
    for name, value in headers:
        if name == "cache-control":
            directives |= _tokens(value)
        elif name == "vary":
            varies |= _tokens(value)
    if "private" in directives or "no-store" in directives:
        return "cache-control"
    if varies - {"accept-encoding", *vary_partitioned}:
        return "vary"
    if "trailer" in names:
        return "trailers"
    return content_type_not_storable(headers)


def storable_headers(headers: Headers) -> list[tuple[str, str]]:
    """The headers of ``headers`` that are kept and replayed: :data:`REPLAYED_HEADERS` only."""
    return [(name, value) for name, value in headers if name in REPLAYED_HEADERS]


def accepts_encoding(accept_encoding: str | None, coding: str) -> bool:
    """May a response in content coding ``coding`` be sent to this client?

    Conservative: a request without ``Accept-Encoding`` only gets ``identity``.
    """
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return True
    if not accept_encoding:
        return False
    star = False
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name == coding:
            return q > 0
        if name == "*":
            star = q > 0
    return star


def split_sse_events(body: bytes) -> list[bytes]:
    """Split an SSE body after each blank line: one chunk per event, bytes unchanged."""
    chunks: list[bytes] = []
    start = 0
    for match in _SSE_EVENT_END.finditer(body):
        chunks.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        chunks.append(body[start:])
    return chunks


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as kept in the cache: status, storable headers, body, streamed or not.

    ``headers`` names are lower case; values are strings (latin-1, as on the wire).
    ``streamed`` responses are replayed chunked (SSE one event per chunk), others with
    a ``Content-Length``.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    streamed: bool = False
    created_at: float = field(default_factory=time.time)

    @property
    def content_type(self) -> str | None:
        return _header(self.headers, "content-type")

    @property
    def content_encoding(self) -> str:
        return (_header(self.headers, "content-encoding") or "identity").strip().lower()

    def encode(self) -> bytes:
        """Serialise: a marker, one JSON header line, then the raw body."""
        head = {
            "s": self.status,
            "h": [list(pair) for pair in self.headers],
            "st": self.streamed,
            "t": self.created_at,
        }
        return _MAGIC + json.dumps(head, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, payload: bytes) -> StoredResponse:
        """Inverse of :meth:`encode`; raises ``ValueError`` on anything else."""
        if not payload.startswith(_MAGIC):
            raise ValueError("not a stored HTTP response")
        head_raw, sep, body = payload[len(_MAGIC) :].partition(b"\n")
        if not sep:
            raise ValueError("truncated stored response")
        head = json.loads(head_raw)
        headers = tuple((str(k), str(v)) for k, v in head["h"])
        status = int(head["s"])
        if not 100 <= status <= 999:
            raise ValueError(f"bad status {status}")
        return cls(status, headers, body, bool(head["st"]), float(head["t"]))

    def replay_headers(
        self,
        *,
        similarity: float | None = None,
        entry_id: str | None = None,
        now: float | None = None,
        version: str | None = None,
    ) -> list[tuple[str, str]]:
        """Headers for sending this response again: framing, ``Age`` and ``X-Semcache``.

        ``X-Semcache-Entry`` names the entry served, so an operator can delete it;
        ``X-Semcache-Entry-Version`` which of its answers (``version``), for feedback.
        """
        # Filtered again: entries stored before the allowlist may hold more.
        headers = storable_headers(self.headers)
        if not self.streamed:
            headers.append(("content-length", str(len(self.body))))
        age = max(0, int((time.time() if now is None else now) - self.created_at))
        headers.append(("age", str(age)))
        headers.append((HEADER_STATUS, "hit"))
        if similarity is not None:
            headers.append((HEADER_SIMILARITY, f"{similarity:.4f}"))
        if entry_id is not None:
            headers.append((HEADER_ENTRY, entry_id))
        if version is not None:
            headers.append((HEADER_ENTRY_VERSION, version))
        return headers

    def chunks(self) -> list[bytes]:
        """The body as it is sent again: one chunk, or per event / line / 64 KiB when streamed."""
        if not self.streamed or not self.body:
            return [self.body]
        media = (self.content_type or "").split(";", 1)[0].strip().lower()
        if media == "text/event-stream":
            return split_sse_events(self.body)
        if media in _STREAMING_TYPES:
            return self.body.splitlines(keepends=True)
        return [self.body[i : i + _REPLAY_CHUNK] for i in range(0, len(self.body), _REPLAY_CHUNK)]


class ResponseRecorder:
    """Keeps a copy of a response while it is passed on, and says whether to store it.

    Call :meth:`start` with the status and headers, :meth:`add` per body chunk, then
    :meth:`finish` once the last chunk was sent successfully. Anything unexpected
    (a reason from :func:`response_not_cacheable` or from
    :func:`~semcache.http.bodies.body_not_storable`, an oversize body, :meth:`abort`)
    makes :meth:`finish` return ``None`` and leaves the reason in :attr:`reason`.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, vary_partitioned: Collection[str] = ()
    ) -> None:
        self.max_bytes = max_bytes
        self.vary_partitioned = frozenset(name.lower() for name in vary_partitioned)
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.reason: str | None = "not started"
        self._chunks: list[bytes] = []
        self._size = 0
        self._body_messages = 0

    def start(self, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = list(headers)
        self.reason = response_not_cacheable(
            status, self.headers, vary_partitioned=self.vary_partitioned
        )

    def add(self, chunk: bytes) -> None:
        if self.reason is not None:
            return
        self._size += len(chunk)
        if self._size > self.max_bytes:
            self.abort("response too large")
            return
        if chunk:
            self._chunks.append(bytes(chunk))
            self._body_messages += 1

    def abort(self, reason: str) -> None:
        self.reason = reason
        self._chunks.clear()

    def finish(self) -> StoredResponse | None:
        if self.reason is not None:
            return None
        content_length = _header(self.headers, "content-length")
        streamed = is_streaming_content_type(_header(self.headers, "content-type")) or (
            content_length is None and self._body_messages > 1
        )
        body = b"".join(self._chunks)
        self._chunks.clear()
        self.reason = body_not_storable(self.headers, body, self.max_bytes)
        if self.reason is not None:
            return None
        return StoredResponse(self.status, tuple(storable_headers(self.headers)), body, streamed)
