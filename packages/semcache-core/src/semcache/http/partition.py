"""The partition rule: everything except the question that must match for a hit.

The partition is an exact hash, never embedded. It covers the method, path and query
string, the model, the request body with the question's text masked (so the system
prompt, images, tools and every sampling parameter; the earlier turns too in the
``exact`` context mode, while the other modes match them in the cache), whether the client
asked for a stream, the request headers that change an answer (:data:`ANSWER_HEADERS`),
where the request goes (the ``Host`` in a middleware, the upstream in the proxy), and the
tenant: a value from the application (``extract_partition``), a trusted tenant header
when one is configured, and the hash of the identity headers (:data:`CREDENTIAL_HEADERS`
and any the operator adds).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from semcache.tags import credential_tag, tenant_tag
from semcache.text import hash_text, partition_key

__all__ = [
    "ANONYMOUS_REQUESTER",
    "ANSWER_HEADERS",
    "CREDENTIAL_HEADERS",
    "DEFAULT_IGNORED_FIELDS",
    "answer_headers",
    "build_partition",
    "credential_hash",
    "header_value",
    "identity_tags",
    "is_stateful",
    "raw_request_path",
    "requester_key",
    "wants_stream",
]

Headers = Sequence[tuple[str, str]]

CREDENTIAL_HEADERS = (
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "cookie",
)
"""Request headers that say who asks: the OpenAI, Azure OpenAI, Anthropic, Gemini and
Azure API Management key headers, and ``Cookie`` (a browser session). The
``identity_headers`` setting adds an application's own (``X-Token``...)."""

ANSWER_HEADERS = (
    "accept-language",
    "anthropic-beta",
    "anthropic-version",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "origin",
    "x-origin",
    "referer",
)
"""Request headers whose value can change the answer: they are part of the partition.
``origin``, ``x-origin`` and ``referer`` are there because Gemini's answers say
``Vary`` on them: an answer that varies on a header outside the partition is not stored."""

DEFAULT_IGNORED_FIELDS: frozenset[str] = frozenset(
    {"user", "metadata", "prompt_cache_key", "safety_identifier"}
)
"""Top-level body fields left out of the partition: they label or log a request
without changing its answer (end-user ids, tags, upstream-cache hints). ``store`` is
not among them: a stored Responses answer carries an id that grants its conversation."""

_STATEFUL_SEGMENTS = frozenset(
    {"assistants", "threads", "runs", "vector_stores", "files", "uploads", "batches"}
)

_VERSION = "semcache-http/2"  # bump when the rule changes, so old entries are not reused


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` (lower case) in ``headers``, or ``None``."""
    for key, value in headers:
        if key == name:
            return value
    return None


def credential_hash(headers: Headers, extra: Collection[str] = ()) -> str | None:
    """Hash of the request's identity headers (:data:`CREDENTIAL_HEADERS` and ``extra``,
    lower case), or ``None`` when it carries none."""
    names = set(CREDENTIAL_HEADERS).union(extra)
    found = [(name, value) for name, value in headers if name in names and value]
    if not found:
        return None
    return hash_text("\n".join(f"{name}:{value}" for name, value in sorted(found)))


def answer_headers(headers: Headers) -> tuple[tuple[str, str], ...]:
    """The request's :data:`ANSWER_HEADERS`, as sorted ``(name, value)`` pairs."""
    return tuple(sorted((n, v.strip()) for n, v in headers if n in ANSWER_HEADERS))


def is_stateful(path: str, body: Any) -> bool:
    """Does the answer carry an id that grants access to state kept by the upstream?

    A Responses API answer stored upstream (``store`` omitted or true: its ``resp_...``
    id continues the conversation), a background job, and the Assistants, threads, runs,
    files, uploads, batches and vector-store endpoints. Such answers are kept per
    credential whatever ``auth_mode`` says.
    """
    if isinstance(body, Mapping):
        if body.get("background") is True:
            return True
        if path.rstrip("/").endswith("/responses") and body.get("store") is not False:
            return True
    return any(part in _STATEFUL_SEGMENTS for part in path.split("/"))


def raw_request_path(raw: bytes | str | None, decoded: str) -> str:
    """The path for the partition: as the client sent it (ASGI ``raw_path``, WSGI
    ``RAW_URI``/``REQUEST_URI``), query string cut off; ``decoded`` when that is absent.

    ``/v1/chat%2Fcompletions`` and ``/v1/chat/completions`` decode alike but are two
    requests to an upstream, so they must not share answers.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    if not raw:
        return decoded
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if "://" in path and not path.startswith("/"):  # absolute form: http://host/path
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return path if path.startswith("/") else decoded


def identity_tags(
    headers: Headers,
    *,
    tenants: Sequence[str | None],
    credential: bool,
    extra: Collection[str] = (),
) -> dict[str, list[str]]:
    """Metadata naming who a partition belongs to, as hashes (:mod:`semcache.tags`):
    the ``tenants`` values, and the credential header values when ``credential`` (the
    credential is part of the partition). Lets an operator flush them later."""
    tags: dict[str, list[str]] = {}
    found = sorted({tenant_tag(t) for t in tenants if t})
    if found:
        tags["tenant"] = found
    if credential:
        names = set(CREDENTIAL_HEADERS).union(extra)
        values = sorted({credential_tag(v) for n, v in headers if n in names and v})
        if values:
            tags["credential"] = values
    return tags


def wants_stream(body: Any, headers: Headers) -> bool:
    """Did the client ask for a streamed answer (``"stream": true`` or ``Accept: text/event-stream``)?"""
    if isinstance(body, Mapping) and body.get("stream") is True:
        return True
    accept = header_value(headers, "accept") or ""
    return "text/event-stream" in accept.lower()


def build_partition(
    *,
    method: str,
    path: str,
    query_string: str = "",
    model: str | None = None,
    rest: Any = None,
    stream: bool = False,
    tenant: str | None = None,
    trusted_tenant: str | None = None,
    credential: str | None = None,
    ignored_fields: Collection[str] = DEFAULT_IGNORED_FIELDS,
    headers: Sequence[tuple[str, str]] = (),
    destination: str | None = None,
    scope: Mapping[str, Any] | None = None,
) -> str:
    """The partition key of one request (a hash; equal keys may share answers).

    ``rest`` is the request body with the question masked; its top-level
    ``ignored_fields`` are dropped. ``tenant`` comes from the application,
    ``trusted_tenant`` from a configured header, ``credential`` from
    :func:`credential_hash`. ``headers`` are the request's :func:`answer_headers`;
    ``destination`` is where the request goes (a middleware's ``Host``, the proxy's
    upstream). ``scope`` narrows the partition further (a route's tenant values, a
    client's namespace); it is hashed only when given, so partitions without it keep
    their keys.
    """
    if isinstance(rest, Mapping) and ignored_fields:
        rest = {k: v for k, v in rest.items() if k not in ignored_fields}
    narrowed = (dict(scope),) if scope else ()
    return partition_key(
        _VERSION,
        method.upper(),
        path,
        query_string,
        model,
        bool(stream),
        tenant,
        trusted_tenant,
        credential,
        rest,
        [list(pair) for pair in headers],
        destination,
        *narrowed,
    )


def requester_key(
    *,
    tenant: str | None = None,
    trusted_tenant: str | None = None,
    credential: str | None = None,
    route_tenant: Mapping[str, Any] | None = None,
) -> str:
    """Who asks, as a hash: the tenant values and the credential's hash of one request.

    The upstream 429 breaker keeps one state per requester. Requests that carry none
    of them share :data:`ANONYMOUS_REQUESTER`. ``route_tenant``: a route's tenant values.
    """
    extra = (dict(route_tenant),) if route_tenant else ()
    return partition_key("semcache-requester/1", tenant, trusted_tenant, credential, *extra)


ANONYMOUS_REQUESTER = requester_key()
"""The requester of every request without a credential or a tenant."""
