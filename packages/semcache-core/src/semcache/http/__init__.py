"""Framework-free HTTP rules shared by the ASGI, Django and Flask adapters and the proxy.

- :mod:`~semcache.http.extract`: the question in a JSON body (``default_extract_query``).
- :mod:`~semcache.http.partition`: what else must match for a hit.
- :mod:`~semcache.http.policy`: eligibility, cache-control, TTL: a request becomes a
  :class:`CachePlan` or a :class:`Bypass`.
- :mod:`~semcache.http.responses`: which responses are stored, the stored format, replay.
- :mod:`~semcache.http.routes`: per-route policies (mode, TTL, threshold, tenant fields).
- :mod:`~semcache.http.headers`: the header names semcache reads and writes.
- :mod:`~semcache.http.breaker`: the upstream 429 breakers, one per requester.
- :mod:`~semcache.http.engine`: the decision flow, once: ``await engine.begin(plan)``
  gives a :class:`Replay` or a :class:`Forward` (:mod:`~semcache.http.flow`).
- :mod:`~semcache.http.bridge`: that engine driven from sync code and foreign event
  loops (Django, Flask, WSGI, a sync HTTP client), through the loop thread of :mod:`semcache.sync`.
- :mod:`~semcache.http.config`: the configuration mapping of the Django and Flask adapters.
"""

from semcache.http.bodies import body_not_storable, content_type_not_storable
from semcache.http.breaker import UpstreamBreaker, UpstreamBreakers
from semcache.http.bridge import BridgedEngine
from semcache.http.config import ADAPTER_OPTIONS, parse_adapter_config
from semcache.http.engine import CachedAnswer, FlightTicket, HttpCacheEngine
from semcache.http.extract import (
    QUERY_PLACEHOLDER,
    Extraction,
    default_extract_model,
    default_extract_query,
    extract,
)
from semcache.http.flow import Forward, RecordedBody, Replay, recorded_async
from semcache.http.headers import (
    HEADER_ENTRY,
    HEADER_ENTRY_VERSION,
    HEADER_MODE,
    HEADER_SIMILARITY,
    HEADER_STATUS,
    HEADER_TTL,
    OWN_HEADERS,
    marked_headers,
)
from semcache.http.partition import (
    ANONYMOUS_REQUESTER,
    CREDENTIAL_HEADERS,
    DEFAULT_IGNORED_FIELDS,
    build_partition,
    credential_hash,
    raw_request_path,
    requester_key,
    wants_stream,
)
from semcache.http.policy import (
    GENERATION_PATHS,
    Bypass,
    CachePlan,
    Extractor,
    HttpCachePolicy,
    HttpRequest,
    cache_directives,
)
from semcache.http.responses import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HOP_BY_HOP_HEADERS,
    PER_RESPONSE_HEADERS,
    REPLAYED_HEADERS,
    ResponseRecorder,
    StoredResponse,
    accepts_encoding,
    is_streaming_content_type,
    response_not_cacheable,
    split_sse_events,
    storable_headers,
)
from semcache.http.routes import ROUTE_MODES, RoutePolicy, match_route

__all__ = [
    "ADAPTER_OPTIONS",
    "ANONYMOUS_REQUESTER",
    "CREDENTIAL_HEADERS",
    "DEFAULT_IGNORED_FIELDS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "GENERATION_PATHS",
    "HEADER_ENTRY",
    "HEADER_ENTRY_VERSION",
    "HEADER_MODE",
    "HEADER_SIMILARITY",
    "HEADER_STATUS",
    "HEADER_TTL",
    "HOP_BY_HOP_HEADERS",
    "OWN_HEADERS",
    "PER_RESPONSE_HEADERS",
    "QUERY_PLACEHOLDER",
    "REPLAYED_HEADERS",
    "ROUTE_MODES",
    "BridgedEngine",
    "Bypass",
    "CachePlan",
    "CachedAnswer",
    "Extraction",
    "Extractor",
    "FlightTicket",
    "Forward",
    "HttpCacheEngine",
    "HttpCachePolicy",
    "HttpRequest",
    "RecordedBody",
    "Replay",
    "ResponseRecorder",
    "RoutePolicy",
    "StoredResponse",
    "UpstreamBreaker",
    "UpstreamBreakers",
    "accepts_encoding",
    "body_not_storable",
    "build_partition",
    "cache_directives",
    "content_type_not_storable",
    "credential_hash",
    "default_extract_model",
    "default_extract_query",
    "extract",
    "is_streaming_content_type",
    "marked_headers",
    "match_route",
    "parse_adapter_config",
    "raw_request_path",
    "recorded_async",
    "requester_key",
    "response_not_cacheable",
    "split_sse_events",
    "storable_headers",
    "wants_stream",
]
