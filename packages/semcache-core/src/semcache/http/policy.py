"""Whether and how one HTTP request uses the cache: eligibility, query, partition, TTL.

Framework-free: adapters turn their request into an :class:`HttpRequest`, ask the
:class:`HttpCachePolicy` for a :class:`CachePlan` (or a :class:`Bypass`), and do the
I/O themselves. The same rules then hold in every adapter.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from semcache.http.extract import default_extract_model, extract, mask_text
from semcache.http.headers import HEADER_MODE, HEADER_TTL
from semcache.http.partition import (
    ANONYMOUS_REQUESTER,
    DEFAULT_IGNORED_FIELDS,
    answer_headers,
    build_partition,
    credential_hash,
    header_value,
    identity_tags,
    is_stateful,
    requester_key,
    wants_stream,
)
from semcache.http.responses import DEFAULT_MAX_RESPONSE_BYTES, StoredResponse, accepts_encoding
from semcache.http.routes import RoutePolicy, decoded_path, match_route
from semcache.settings import Settings
from semcache.text import exact_text

__all__ = [
    "GENERATION_PATHS",
    "Bypass",
    "CachePlan",
    "Extractor",
    "HttpCachePolicy",
    "HttpRequest",
    "cache_directives",
]

log = logging.getLogger("semcache")

Headers = Sequence[tuple[str, str]]

GENERATION_PATHS = (
    "*/chat/completions",  # OpenAI-compatible chat (also Azure's deployments/NAME/...)
    "*/completions",  # legacy completions
    "*/responses",  # OpenAI Responses
    "*/messages",  # Anthropic Messages (not count_tokens, not batches)
    "*/api/generate",  # Ollama
    "*/api/chat",  # Ollama
    "*:generateContent",  # Gemini
    "*:streamGenerateContent",  # Gemini, streamed
)
"""The generation endpoints of the OpenAI, Anthropic, Ollama and Gemini APIs, as
``paths`` patterns: what the proxy and the HTTP client transport cache by default.
Embeddings, moderations, token counting and every endpoint that creates something pass
through untouched."""

Extractor = Callable[[Any, Any], "str | Awaitable[str | None] | None"]
"""``(request, body) -> str | None``, sync or async; ``body`` is the parsed JSON."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the policy needs of a request. Header names lower case, values latin-1 strings;
    ``path`` as the client sent it (percent-encoding kept: it is what the upstream gets).
    ``destination``: where this request goes, when the adapter knows it (an HTTP client
    does); it replaces the policy's ``destination`` for the partition."""

    method: str
    path: str
    query_string: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Bypass:
    """The request passes through untouched (answered with ``X-Semcache: bypass``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CachePlan:
    """How an eligible request uses the cache.

    ``lookup`` is False for ``Cache-Control: no-cache`` (refresh: skip the lookup,
    store the new answer); ``store`` is False for ``X-Semcache-TTL: 0``; ``ttl`` None
    means the cache's default. ``context`` holds the earlier turns when the
    ``context_mode`` setting is ``turns`` (the default) or ``semantic`` (with ``exact``,
    they are in the partition).
    ``requester`` is a hash of who asks (credential and tenant), the key of the
    upstream 429 breaker the request consults and feeds. ``exact``: only the same text
    is a hit (the path is one of the policy's ``exact_paths``, e.g. embeddings, or its
    route says ``exact``). ``threshold``: the route's similarity bar (None: the cache's).
    """

    query: str
    partition: str
    context: str | None = None
    ttl: int | None = None
    lookup: bool = True
    store: bool = True
    stream: bool = False
    accept_encoding: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    requester: str = ANONYMOUS_REQUESTER
    exact: bool = False
    threshold: float | None = None
    tenant: str = "anonymous"
    """Who asks, as a label for savings and logs: the tenant value (application or
    trusted header), else ``key:`` and a short hash of the credential, else
    ``anonymous``. Never a raw credential."""

    @property
    def flight_key(self) -> str:
        """Key for collapsing concurrent identical misses."""
        context = exact_text(self.context) if self.context else ""
        return self.partition + "\x00" + context + "\x00" + exact_text(self.query)

    def can_replay(self, stored: StoredResponse) -> bool:
        """May this stored answer be sent to this client (content coding it accepts)?"""
        return accepts_encoding(self.accept_encoding, stored.content_encoding)


def cache_directives(headers: Headers) -> dict[str, str | None]:
    """Request ``Cache-Control`` directives (``Pragma: no-cache`` when there is none)."""
    found: dict[str, str | None] = {}
    for name, value in headers:
        if name != "cache-control":
            continue
        for item in value.split(","):
            key, eq, arg = item.strip().partition("=")
            if key:
                found[key.strip().lower()] = arg.strip().strip('"') if eq else None
    if not found and (header_value(headers, "pragma") or "").strip().lower() == "no-cache":
        found["no-cache"] = None
    return found


def tenant_label(tenant: str | None, credential_id: str | None) -> str:
    """The label of who asks (:attr:`CachePlan.tenant`)."""
    if tenant:
        return tenant.strip()[:64] or "anonymous"
    if credential_id:
        return "key:" + credential_id[:12]
    return "anonymous"


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


async def _call(fn: Extractor, request: Any, body: Any) -> str | None:
    result = fn(request, body)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return None
    if not isinstance(result, str):
        raise TypeError(f"expected str or None, got {type(result).__name__}")
    return result


class HttpCachePolicy:
    """The cache rules for HTTP requests, shared by every adapter.

    ``settings`` supplies ``enabled``, ``max_body_bytes``, ``max_ttl``, ``auth_mode``,
    ``tenant_header``, ``identity_headers`` and ``client_cache_control``. ``methods``,
    ``path_prefix`` and ``paths`` (glob patterns the whole path must match, ``*``
    matching ``/`` too; ``None``: every path under the prefix) choose the requests the
    cache looks at at all; others are not touched. Requests whose path matches one of
    ``exact_paths`` are cached for exact repeats only (never embedded). ``destination`` names where requests
    go, for the partition: ``None`` means each request's ``Host`` header (a middleware);
    the proxy passes its upstream, or a function of the path when prefixes go to
    different upstreams. ``routes`` (default: the configuration file's,
    ``settings.routes``) are ordered per-route policies: the first matching a path
    decides its mode, TTL, threshold and tenant values; other paths keep the rules
    above. The extractors are called as ``fn(request, body)`` with the adapter's own
    request object and the parsed JSON body, may be sync or async, and when one raises
    the request is bypassed.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        enabled: bool | None = None,
        methods: Iterable[str] = ("POST",),
        path_prefix: str = "/",
        extract_query: Extractor | None = None,
        extract_model: Extractor | None = None,
        extract_partition: Extractor | None = None,
        ignored_fields: Collection[str] = DEFAULT_IGNORED_FIELDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        paths: Collection[str] | None = None,
        destination: str | Callable[[str], str] | None = None,
        exact_paths: Collection[str] = (),
        routes: Sequence[RoutePolicy] | None = None,
    ) -> None:
        self.settings = settings
        self.enabled = settings.enabled if enabled is None else enabled
        self.methods = frozenset(m.upper() for m in methods)
        self.path_prefix = path_prefix or "/"
        self.paths = None if paths is None else tuple(paths)
        self.exact_paths = tuple(exact_paths)
        self.routes = tuple(routes) if routes is not None else settings.routes
        self.destination = destination
        self.identity_headers = frozenset(
            name.strip().lower()
            for name in (settings.identity_headers or "").split(",")
            if name.strip()
        )
        self.extract_query = extract_query
        self.extract_model = extract_model or default_extract_model
        self.extract_partition = extract_partition
        self.ignored_fields = frozenset(ignored_fields)
        self.max_response_bytes = max_response_bytes
        self.tenant_header = (
            settings.tenant_header.strip().lower() if settings.tenant_header else None
        )
        self.namespace_header = (
            settings.namespace_header.strip().lower() if settings.namespace_header else None
        )

    @property
    def max_body_bytes(self) -> int:
        return self.settings.max_body_bytes

    def in_scope(self, method: str, path: str) -> bool:
        """Does the cache look at this request at all? (Others are not touched, no header.)"""
        if not self.enabled or method.upper() not in self.methods:
            return False
        route = match_route(self.routes, path)
        if route is not None and route.mode == "off":
            return False
        if (
            self.paths is not None
            and route is None
            and not _matches(path, self.paths)
            and not _matches(path, self.exact_paths)
        ):
            return False
        prefix = self.path_prefix
        if prefix == "/" or path == prefix or prefix.endswith("/"):
            return path.startswith(prefix)
        return path.startswith(prefix + "/")

    def precheck(self, headers: Headers) -> Bypass | None:
        """Reasons to bypass that the headers alone show, before the body is read."""
        if "no-store" in cache_directives(headers):
            return Bypass("no-store")
        length = header_value(headers, "content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return Bypass("bad content-length")
            if size > self.max_body_bytes:
                return Bypass("body too large")
        encoding = (header_value(headers, "content-encoding") or "identity").strip().lower()
        if encoding != "identity":
            return Bypass("compressed body")
        if (
            self.settings.auth_mode == "bypass"
            and credential_hash(headers, self.identity_headers) is not None
        ):
            return Bypass("credentials")
        return None

    def parse_body(self, body: bytes) -> Any:
        """The parsed JSON body, or a :class:`Bypass` (too large, empty, not UTF-8, not JSON)."""
        if len(body) > self.max_body_bytes:
            return Bypass("body too large")
        if not body.strip():
            return Bypass("empty body")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Bypass("not utf-8")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return Bypass("not json")

    async def plan(self, request: HttpRequest, native: Any = None) -> CachePlan | Bypass:
        """A :class:`CachePlan` for ``request``, or why it bypasses the cache. Never raises."""
        try:
            return await self._plan(request, native)
        except Exception:
            log.exception("semcache: could not plan the request; passing it through")
            return Bypass("error")

    async def _plan(self, request: HttpRequest, native: Any) -> CachePlan | Bypass:
        headers = request.headers
        early = self.precheck(headers)
        if early is not None:
            return early
        route = match_route(self.routes, decoded_path(request.path))
        if route is not None and route.mode == "off":
            return Bypass("route off")
        body = self.parse_body(request.body)
        if isinstance(body, Bypass):
            return body

        query: str | None = None
        rest: Any = None
        context: str | None = None
        if self.extract_query is None:
            found = extract(body)
            if found is not None:
                query, rest = found.query, found.rest
                if found.context and self.settings.context_mode != "exact":
                    # The earlier turns are matched by the cache (turn by turn, or by meaning).
                    rest, context = found.rest_without_context, found.context
        else:
            custom = await self._user("extract_query", self.extract_query, native, body)
            if isinstance(custom, Bypass):
                return custom
            query = custom
            if query is not None:
                rest = mask_text(body, query)  # the question may sit anywhere in the body
        if not query or not query.strip():
            return Bypass("no query")

        model = await self._user("extract_model", self.extract_model, native, body)
        if isinstance(model, Bypass):
            return model
        tenant: str | None = None
        route_tenant = route.tenant(headers, body) if route is not None else None
        if self.extract_partition is not None:
            found_tenant = await self._user(
                "extract_partition", self.extract_partition, native, body
            )
            if isinstance(found_tenant, Bypass):
                return found_tenant
            tenant = found_tenant
        trusted = header_value(headers, self.tenant_header) if self.tenant_header else None
        credential_id = credential_hash(headers, self.identity_headers)
        # An answer that grants access to upstream state is never shared across
        # credentials, whatever auth_mode says.
        per_credential = self.settings.auth_mode == "partition" or is_stateful(request.path, body)
        credential = credential_id if per_credential else None
        stream = wants_stream(body, headers)
        if request.destination is not None:
            destination = request.destination
        elif callable(self.destination):
            destination = self.destination(request.path)
        elif self.destination is not None:
            destination = self.destination
        else:
            destination = (header_value(headers, "host") or "").strip().lower()

        partition = build_partition(
            method=request.method,
            path=request.path,
            query_string=request.query_string,
            model=model,
            rest=rest,
            stream=stream,
            tenant=tenant,
            trusted_tenant=trusted,
            credential=credential,
            ignored_fields=self.ignored_fields,
            headers=answer_headers(headers),
            destination=destination,
            scope=self._scope(route_tenant, headers),
        )
        directives = cache_directives(headers)
        refresh = "no-cache" in directives or directives.get("max-age") == "0"
        ttl, store = self._ttl(header_value(headers, HEADER_TTL), route)
        mode = self._client_mode(headers)
        # Write-only is a refresh: it replaces what the partition gets, as no-cache does.
        refresh = refresh or mode == "write-only"
        if not self._may_steer(identified=bool(credential_id or tenant or trusted)):
            # Refreshing or pinning an entry would change what others get: ignored.
            refresh, ttl = False, None
        if mode == "read-only":
            store = False  # serve from the cache, never write to it
        if ttl is None and route is not None and route.ttl is not None:
            ttl = route.ttl
        metadata: dict[str, Any] = {
            "method": request.method.upper(),
            "path": request.path,
            "stream": stream,
        }
        if model is not None:
            metadata["model"] = model
        route_values = [str(v) for v in (route_tenant or {}).values() if v is not None]
        metadata.update(
            identity_tags(
                headers,
                tenants=(tenant, trusted, *route_values),
                credential=bool(credential),
                extra=self.identity_headers,
            )
        )
        return CachePlan(
            query=query,
            partition=partition,
            context=context,
            ttl=ttl,
            lookup=not refresh,
            store=store,
            stream=stream,
            accept_encoding=header_value(headers, "accept-encoding"),
            metadata=metadata,
            # The credential even when answers are shared: the upstream limits per key.
            requester=requester_key(
                tenant=tenant,
                trusted_tenant=trusted,
                credential=credential_id,
                route_tenant=route_tenant,
            ),
            exact=route.mode == "exact" if route else _matches(request.path, self.exact_paths),
            threshold=route.threshold if route else None,
            tenant=tenant_label(tenant or trusted or "/".join(route_values), credential_id),
        )

    async def _user(self, name: str, fn: Extractor, native: Any, body: Any) -> str | Bypass | None:
        try:
            return await _call(fn, native, body)
        except Exception:
            log.exception("semcache: %s raised; passing the request through", name)
            return Bypass(f"{name} failed")

    def _scope(
        self, route_tenant: dict[str, Any] | None, headers: Headers
    ) -> dict[str, Any] | None:
        """What narrows the partition past the default rule: the route's tenant values and
        the client's namespace (added to it; the credential stays in the partition)."""
        scope: dict[str, Any] = {}
        if route_tenant:
            scope["route_tenant"] = route_tenant
        if self.namespace_header is not None:
            namespace = (header_value(headers, self.namespace_header) or "").strip()
            if namespace:
                scope["namespace"] = namespace
        return scope or None

    def _client_mode(self, headers: Headers) -> str | None:
        """``read-only``, ``write-only`` or ``None``: ``X-Semcache-Mode`` when the
        ``client_modes`` setting allows it (otherwise the header is ignored)."""
        if not self.settings.client_modes:
            return None
        mode = (header_value(headers, HEADER_MODE) or "").strip().lower()
        if mode in ("read-only", "write-only"):
            return mode
        if mode:
            log.debug("semcache: ignoring %s=%r", HEADER_MODE, mode)
        return None

    def _may_steer(self, *, identified: bool) -> bool:
        """May this request refresh an entry or set its TTL (``client_cache_control``)?"""
        mode = self.settings.client_cache_control
        return mode == "all" or (mode == "identified" and identified)

    def _ttl(self, raw: str | None, route: RoutePolicy | None = None) -> tuple[int | None, bool]:
        """(ttl, store) from ``X-Semcache-TTL``: capped at ``max_ttl`` (default: the
        route's TTL, else the ``ttl`` setting); 0 means do not store."""
        if raw is None:
            return None, True
        raw = raw.strip()
        if not raw.isascii() or not raw.isdigit():
            log.debug("semcache: ignoring %s=%r (not a whole number of seconds)", HEADER_TTL, raw)
            return None, True
        seconds = int(raw)
        if seconds == 0:
            return None, False
        default = route.ttl if route is not None and route.ttl is not None else self.settings.ttl
        cap = self.settings.max_ttl if self.settings.max_ttl is not None else default
        if self.settings.max_ttl == 0:
            return None, True  # per-request TTLs are switched off
        if cap <= 0:  # ttl 0 (no expiry) and no cap of its own: as asked
            return seconds, True
        return min(seconds, cap), True
