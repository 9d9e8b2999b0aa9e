"""The OpenTelemetry seam: spans and metrics when ``opentelemetry-api`` is installed.

Nothing here imports OpenTelemetry until the first span or metric is asked for, and
then only when the package is installed and the ``otel`` setting is on; otherwise
every call is a no-op on a shared object. With the API but no SDK configured yet, no
span is started either (the API's would be no-ops costing microseconds); a provider
the process sets later is used from then on. The process configures the SDK and its
exporters through the standard ``OTEL_*`` variables (e.g. ``opentelemetry-instrument``).

Span names are ``semcache.<stage>``; attributes are ``semcache.*`` for the cache's
decision and the GenAI semantic conventions (``gen_ai.*``) where they apply.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semcache.telemetry.savings import Saving

__all__ = [
    "NO_SPAN",
    "current_span",
    "enabled",
    "enabled_by_setting",
    "live",
    "record_lookup",
    "record_request",
    "record_saving",
    "record_upstream",
    "request_span",
    "set_attributes",
    "set_enabled",
    "span",
]

_SCOPE = "semcache"

_lock = threading.Lock()
_wanted = True
_resolved = False
_tracer: Any = None
_instruments: dict[str, Any] = {}
# Where the API keeps the global providers, once imported: (module, attribute, getter).
_trace_slot: Any = None
_metrics_slot: Any = None
_placeholders: tuple[type, ...] = ()
"""The API's own provider classes, in place while the process has configured no SDK."""
_sdk = {"trace": False, "metrics": False}
"""A real provider was seen (one cannot be unset afterwards)."""
_RECHECK = 1.0
"""Seconds between two looks for an SDK through the API's getters (the fallback)."""
_next_look = {"trace": 0.0, "metrics": 0.0}
_UNKNOWN = object()


class _NoSpan:
    """What :func:`span` gives without OpenTelemetry: a context manager that does nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def is_recording(self) -> bool:
        return False


NO_SPAN: Any = _NoSpan()


def set_enabled(on: bool) -> None:
    """Turn spans and metrics on or off for the process (the ``otel`` setting)."""
    global _wanted, _resolved, _tracer
    with _lock:
        _wanted = on
        _resolved = False
        _tracer = None
        _sdk.update(trace=False, metrics=False)
        _next_look.update(trace=0.0, metrics=0.0)
        _instruments.clear()


def enabled_by_setting() -> bool:
    """What the ``otel`` setting last asked for (the process-wide switch)."""
    return _wanted


def _resolve() -> Any:
    """The tracer, or ``None``; OpenTelemetry is imported here, once, if at all."""
    global _resolved, _tracer, _trace_slot, _metrics_slot, _placeholders
    with _lock:
        if _resolved:
            return _tracer
        _tracer = None
        if _wanted and _installed():
            try:
                from opentelemetry import metrics, trace
            except ImportError:
                pass
            else:
                _tracer = trace.get_tracer(_SCOPE)
                _trace_slot, _metrics_slot = _provider_slots()
                _placeholders = _api_placeholders()
                _instruments.update(_create_instruments(metrics.get_meter(_SCOPE)))
        _resolved = True
        return _tracer


def _installed() -> bool:
    """Is ``opentelemetry-api`` there to import? (Asked without importing it.)"""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def _provider_slots() -> tuple[Any, Any]:
    """Where the global tracer and meter providers are kept. The module globals are read
    directly (nanoseconds, and a provider set later is seen at once); the getters, which
    also load a provider named by ``OTEL_PYTHON_*_PROVIDER``, are called once here."""
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import _internal

    trace.get_tracer_provider()
    metrics.get_meter_provider()
    return (
        (trace, "_TRACER_PROVIDER", trace.get_tracer_provider),
        (_internal, "_METER_PROVIDER", metrics.get_meter_provider),
    )


def _api_placeholders() -> tuple[type, ...]:
    """The provider classes the API answers with while no SDK is configured."""
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import _internal

    found: list[type] = [trace.ProxyTracerProvider, trace.NoOpTracerProvider]
    found.append(metrics.NoOpMeterProvider)
    proxy = getattr(_internal, "_ProxyMeterProvider", None)
    if isinstance(proxy, type):
        found.append(proxy)
    return tuple(found)


def _configured(kind: str, slot: Any) -> bool:
    """Has the process set a real provider of ``kind`` (``trace``, ``metrics``)?"""
    if _sdk[kind]:
        return True
    if slot is None:
        return False
    module, attribute, getter = slot
    held = getattr(module, attribute, _UNKNOWN)
    if held is _UNKNOWN:
        # An API that keeps it elsewhere: ask its getter, once a second at most.
        now = time.monotonic()
        if now < _next_look[kind]:
            return False
        held = getter()
        _next_look[kind] = now + _RECHECK
    if held is None or isinstance(held, _placeholders):
        return False
    _sdk[kind] = True
    return True


def enabled() -> bool:
    """Is OpenTelemetry in use (installed and switched on)?"""
    return (_tracer if _resolved else _resolve()) is not None


def _live_tracer() -> Any:
    """The tracer once the process has configured a tracer provider (an SDK), else
    ``None``: until then the API would only hand out no-op spans, at microseconds each,
    so none are started at all."""
    tracer = _tracer if _resolved else _resolve()
    if tracer is None or not _configured("trace", _trace_slot):
        return None
    return tracer


def live() -> bool:
    """Would a span be recorded now (OpenTelemetry installed, on, and an SDK configured)?"""
    return _live_tracer() is not None


def span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A context manager for a span ``name``, the current one's child; it yields the span.

    Without OpenTelemetry, or while the process has configured no SDK: :data:`NO_SPAN`.
    Exceptions are recorded on the span.
    """
    tracer = _live_tracer()
    if tracer is None:
        return NO_SPAN
    clean = None if attributes is None else {k: v for k, v in attributes.items() if v is not None}
    return tracer.start_as_current_span(name, attributes=clean)


def request_span(
    name: str, attributes: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Any:
    """:func:`span` for one HTTP request served: the child of the span running now when
    that one is an outer server's (an instrumented server or framework), else of the
    caller's ``traceparent`` in ``headers`` (lower-case names), else a new trace.

    A span of semcache's own is never the parent: some event loops (uvloop) run a
    keep-alive connection's next request in the context its previous response was sent
    in, while that request's spans are still open.
    """
    tracer = _live_tracer()
    if tracer is None:
        return NO_SPAN
    from opentelemetry import propagate, trace

    clean = {k: v for k, v in attributes.items() if v is not None}
    ambient = trace.get_current_span()
    if ambient.is_recording() and not str(getattr(ambient, "name", "")).startswith("semcache."):
        return tracer.start_as_current_span(name, attributes=clean)
    parent = propagate.extract(dict(headers or {}))
    return tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.SERVER, attributes=clean
    )


def current_span() -> Any:
    """The span of the code running now (:data:`NO_SPAN` without OpenTelemetry)."""
    if _live_tracer() is None:
        return NO_SPAN
    from opentelemetry import trace

    return trace.get_current_span()


def set_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """Set the ``attributes`` that have a value (``None`` ones are left out)."""
    if span is NO_SPAN or not span.is_recording():
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)


# -- metrics, mirroring the proxy's Prometheus ones ---------------------------------


def _create_instruments(meter: Any) -> dict[str, Any]:
    return {
        "requests": meter.create_counter(
            "semcache.requests", unit="{request}", description="Requests by cache result."
        ),
        "request_duration": meter.create_histogram(
            "semcache.request.duration", unit="s", description="Time to the end of the response."
        ),
        "lookup_duration": meter.create_histogram(
            "semcache.lookup.duration", unit="s", description="Cache lookup time."
        ),
        "upstream_duration": meter.create_histogram(
            "semcache.upstream.duration", unit="s", description="Upstream time to response headers."
        ),
        "hit_similarity": meter.create_histogram(
            "semcache.hit.similarity", unit="1", description="Similarity of served hits."
        ),
        "saved_tokens": meter.create_counter(
            "semcache.saved.tokens", unit="{token}", description="Tokens hits did not spend."
        ),
        "saved_seconds": meter.create_counter(
            "semcache.saved.seconds", unit="s", description="Upstream seconds hits did not wait."
        ),
        "saved_usd": meter.create_counter(
            "semcache.saved.usd", unit="USD", description="Dollars hits did not spend."
        ),
    }


def _instrument(name: str) -> Any:
    """The instrument, once the process configured a meter provider (else ``None``:
    the API's own would only discard the values)."""
    if not _resolved:
        _resolve()
    if not _configured("metrics", _metrics_slot):
        return None
    return _instruments.get(name)


def record_request(result: str, seconds: float, similarity: float | None = None) -> None:
    """One response sent, by cache result (``hit``, ``miss``, ``bypass``)."""
    counter = _instrument("requests")
    if counter is None:
        return
    labels = {"semcache.result": result}
    counter.add(1, labels)
    _instruments["request_duration"].record(seconds, labels)
    if similarity is not None:
        _instruments["hit_similarity"].record(similarity)


def record_lookup(seconds: float) -> None:
    histogram = _instrument("lookup_duration")
    if histogram is not None:
        histogram.record(seconds)


def record_upstream(seconds: float, status: int) -> None:
    histogram = _instrument("upstream_duration")
    if histogram is not None:
        histogram.record(seconds, {"http.response.status_code": status})


def record_saving(saving: Saving, labels: Mapping[str, str]) -> None:
    """One hit's saving, under its (capped) model, route and tenant labels."""
    tokens = _instrument("saved_tokens")
    if tokens is None:
        return
    base = {f"semcache.{k}": v for k, v in labels.items()}
    tokens.add(saving.input_tokens, {**base, "gen_ai.token.type": "input"})
    tokens.add(saving.output_tokens, {**base, "gen_ai.token.type": "output"})
    _instruments["saved_seconds"].add(saving.seconds, base)
    if saving.usd is not None:
        _instruments["saved_usd"].add(saving.usd, base)
