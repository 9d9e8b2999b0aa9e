"""One frozen settings object, read from ``SEMANTIC_CACHE_*`` variables.

The cache, the middleware and the proxy all read the same :class:`Settings`. Every
field names its environment variable, its default, its accepted range and a one-line
description; ``python -m semcache settings`` prints them as the README table.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from semcache import env
from semcache.errors import SettingsError

__all__ = ["Settings", "SettingsError", "settings_table"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _parse_optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _parse_optional_int(raw: str) -> int | None:
    return int(raw) if raw.strip() else None


def _parse_optional_float(raw: str) -> float | None:
    return float(raw) if raw.strip() else None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "int": int,
    "float": float,
    "str": str.strip,
    "str | None": _parse_optional_str,
    "int | None": _parse_optional_int,
    "float | None": _parse_optional_float,
}


def _setting(
    var: str,
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
) -> Any:
    meta = {
        "env": var,
        "doc": doc,
        "low": low,
        "high": high,
        "choices": choices,
        "secret": secret,
    }
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of semcache. Build with :meth:`from_env`, override with :meth:`replace`."""

    # Engine
    enabled: bool = _setting(
        env.ENABLED, True, "Turn the cache off entirely (requests pass through)."
    )
    threshold: float | None = _setting(
        env.THRESHOLD,
        None,
        "Cosine similarity a semantic hit needs; empty means the embedder model's tuned default.",
        low=0.0,
        high=1.0,
    )
    ttl: int = _setting(
        env.TTL, 86400, "Seconds an entry lives; 0 keeps entries until evicted.", low=0
    )
    max_ttl: int = _setting(
        env.MAX_TTL, 7 * 86400, "Upper bound for a per-request TTL (X-Semcache-TTL).", low=0
    )
    top_k: int = _setting(
        env.TOP_K, 4, "Candidates fetched from the vector search.", low=1, high=100
    )
    max_entries: int = _setting(
        env.MAX_ENTRIES,
        100_000,
        "Embedded stores: entries kept before the least recently used are evicted.",
        low=1,
    )
    data_path: str | None = _setting(
        env.DATA_PATH,
        None,
        "Embedded stores: folder for the on-disk copy; empty keeps memory only.",
    )
    verifier: str = _setting(
        env.VERIFIER,
        "default",
        "Check after the vector search: `default` (rule-based), `none`, or a plugin name.",
    )
    context_mode: str = _setting(
        env.CONTEXT_MODE,
        "exact",
        "Earlier conversation turns: `exact` (part of the partition) or `semantic` (embedded, "
        "matched with their own threshold).",
        choices=("exact", "semantic"),
    )
    context_threshold: float = _setting(
        env.CONTEXT_THRESHOLD,
        0.9,
        "Cosine similarity the earlier turns need in `semantic` context mode.",
        low=0.0,
        high=1.0,
    )

    # Time budgets and the breaker
    lookup_timeout_ms: int = _setting(
        env.LOOKUP_TIMEOUT_MS, 2000, "Whole-lookup budget; past it the request is a miss.", low=1
    )
    store_timeout_ms: int = _setting(
        env.STORE_TIMEOUT_MS, 250, "Budget for one vector or response store call.", low=1
    )
    embedder_timeout_ms: int = _setting(
        env.EMBEDDER_TIMEOUT_MS, 1500, "Budget for one embedding call.", low=1
    )
    single_flight_timeout: float = _setting(
        env.SINGLE_FLIGHT_TIMEOUT,
        300.0,
        "Seconds a request waits for an identical one already asking the upstream "
        "(single flight) before asking itself.",
        low=0.0,
    )
    breaker_failures: int = _setting(
        env.BREAKER_FAILURES, 3, "Consecutive failures that open a component's breaker.", low=1
    )
    breaker_cooldown_ms: int = _setting(
        env.BREAKER_COOLDOWN_MS, 5000, "How long an open breaker skips its component.", low=0
    )

    # Embedder
    embedder_type: str = _setting(
        env.EMBEDDER_TYPE,
        "huggingface",
        "Embedder plugin: huggingface, openai, ollama, cohere, voyage or a third-party name.",
    )
    embedder_model: str | None = _setting(
        env.EMBEDDER_MODEL,
        None,
        "Model name or local path; empty means the plugin's default "
        "(all-MiniLM-L6-v2 for huggingface).",
    )
    embedder_device: str = _setting(
        env.EMBEDDER_DEVICE,
        "cpu",
        "Device for local models: cpu, cuda, mps.",
        choices=("cpu", "cuda", "mps"),
    )
    embedder_backend: str = _setting(
        env.EMBEDDER_BACKEND,
        "torch",
        "Local model runtime: torch, onnx or onnx-int8 (huggingface plugin).",
        choices=("torch", "onnx", "onnx-int8"),
    )
    embedder_threads: int = _setting(
        env.EMBEDDER_THREADS, 1, "Threads a local model may use per call.", low=1, high=256
    )
    embedder_dimensions: int | None = _setting(
        env.EMBEDDER_DIMENSIONS, None, "Output dimensions for APIs that can shorten vectors.", low=1
    )
    embedder_base_url: str | None = _setting(
        env.EMBEDDER_BASE_URL, None, "Base URL of an embedding API (OpenAI-compatible, Ollama...)."
    )
    embedder_api_key: str | None = _setting(
        env.EMBEDDER_API_KEY,
        None,
        "API key for the embedding API; else the provider's own variable (OPENAI_API_KEY...).",
        secret=True,
    )
    embedder_input_type: str | None = _setting(
        env.EMBEDDER_INPUT_TYPE, None, "Input type for providers that take one (Cohere, Voyage)."
    )
    embedder_max_retries: int = _setting(
        env.EMBEDDER_MAX_RETRIES, 2, "Retries on 429 and 5xx from an embedding API.", low=0
    )
    batch_max_size: int = _setting(
        env.BATCH_MAX_SIZE, 32, "Micro-batching: most texts sent to the model in one call.", low=1
    )
    batch_window_ms: float = _setting(
        env.BATCH_WINDOW_MS,
        2.0,
        "Micro-batching: how long a batch waits for company while another call is running.",
        low=0.0,
        high=1000.0,
    )

    # Stores
    vector_store: str = _setting(
        env.VECTOR_STORE,
        "auto",
        "Vector store plugin; `auto` picks pgvector when PG_URI is set, else memory.",
    )
    response_store: str = _setting(
        env.RESPONSE_STORE,
        "auto",
        "Response store plugin; `auto` picks redis when REDIS_URI is set, else memory.",
    )
    pg_uri: str | None = _setting(
        env.PG_URI, None, "PostgreSQL URI (postgresql://...) for the pgvector store.", secret=True
    )
    pg_pool_size: int = _setting(env.PG_POOL_SIZE, 5, "PostgreSQL pool size per process.", low=1)
    pg_max_overflow: int = _setting(
        env.PG_MAX_OVERFLOW, 5, "Extra PostgreSQL connections past the pool size.", low=0
    )
    hnsw_m: int = _setting(env.HNSW_M, 16, "HNSW index: links per node.", low=2, high=100)
    hnsw_ef_construction: int = _setting(
        env.HNSW_EF_CONSTRUCTION, 64, "HNSW index: candidate list while building.", low=4, high=1000
    )
    hnsw_ef_search: int = _setting(
        env.HNSW_EF_SEARCH, 40, "HNSW index: candidate list while searching.", low=1, high=1000
    )
    redis_uri: str | None = _setting(
        env.REDIS_URI,
        None,
        "Redis URI (redis://... or rediss://...) for the response store.",
        secret=True,
    )
    prefix: str = _setting(
        env.PREFIX, "semcache", "Name prefix for tables and keys, so deployments can share servers."
    )

    # HTTP adapters
    max_body_bytes: int = _setting(
        env.MAX_BODY_BYTES, 1 << 20, "Request bodies larger than this pass through uncached.", low=0
    )
    auth_mode: str = _setting(
        env.AUTH_MODE,
        "partition",
        "Requests with credentials: `partition` (cache per credential hash), `bypass`, or "
        "`shared` (one cache for everyone; only for public answers).",
        choices=("partition", "bypass", "shared"),
    )
    tenant_header: str | None = _setting(
        env.TENANT_HEADER,
        None,
        "Header naming the tenant, trusted only when set (e.g. set by your gateway).",
    )
    upstream_429_threshold: int = _setting(
        env.UPSTREAM_429_THRESHOLD,
        5,
        "Consecutive upstream 429s that open the upstream breaker; 0 disables it.",
        low=0,
    )
    upstream_429_cooldown: float = _setting(
        env.UPSTREAM_429_COOLDOWN,
        30.0,
        "Seconds the upstream breaker answers misses with 503.",
        low=0.0,
    )

    # Proxy
    proxy_upstream: str = _setting(
        env.PROXY_UPSTREAM, "http://127.0.0.1:11434", "Upstream base URL the proxy forwards to."
    )
    proxy_host: str = _setting(env.PROXY_HOST, "127.0.0.1", "Proxy listen address.")
    proxy_port: int = _setting(env.PROXY_PORT, 8080, "Proxy listen port.", low=1, high=65535)
    proxy_workers: int = _setting(env.PROXY_WORKERS, 1, "Proxy worker processes.", low=1, high=256)
    proxy_timeout: float = _setting(
        env.PROXY_TIMEOUT, 300.0, "Seconds the proxy waits on the upstream.", low=0.001
    )
    proxy_verify: bool = _setting(env.PROXY_VERIFY, True, "Verify the upstream's TLS certificate.")
    admin_token: str | None = _setting(
        env.ADMIN_TOKEN, None, "Bearer token for the admin API; unset disables it.", secret=True
    )
    admin_path: str = _setting(env.ADMIN_PATH, "/_semcache/admin", "Admin API path prefix.")
    health_path: str = _setting(env.HEALTH_PATH, "/healthz", "Liveness endpoint path.")
    ready_path: str = _setting(env.READY_PATH, "/readyz", "Readiness endpoint path.")
    metrics_path: str = _setting(env.METRICS_PATH, "/metrics", "Prometheus metrics path.")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``SEMANTIC_CACHE_*`` variable; keyword overrides win over the environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = f.metadata["env"]
            if f.name in overrides or var not in environ:
                continue
            parser = _PARSERS[str(f.type)]
            raw = environ[var]
            try:
                values[f.name] = parser(raw)
                _check(f, values[f.name])
            except (ValueError, SettingsError) as exc:
                raise SettingsError(f"{var}={raw!r} is invalid: {_accepted(f)}") from exc
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some fields changed (validated like any other)."""
        return dataclasses.replace(self, **overrides)

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value is not None:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def _accepted(f: dataclasses.Field[Any]) -> str:
    meta = f.metadata
    kind = str(f.type).replace(" | None", "")
    if kind == "bool":
        return "expected a boolean (true/false, 1/0, yes/no, on/off)"
    if meta["choices"]:
        return "expected one of " + ", ".join(meta["choices"])
    bounds = ""
    if meta["low"] is not None and meta["high"] is not None:
        bounds = f" between {meta['low']:g} and {meta['high']:g}"
    elif meta["low"] is not None:
        bounds = f" of at least {meta['low']:g}"
    optional = " (or empty)" if "None" in str(f.type) else ""
    article = "an" if kind == "int" else "a"
    noun = {"int": "integer", "float": "number", "str": "string"}[kind]
    return f"expected {article} {noun}{bounds}{optional}"


def _check(f: dataclasses.Field[Any], value: Any) -> None:
    meta = f.metadata
    if value is None:
        if "None" not in str(f.type):
            raise SettingsError(f"{meta['env']} must be set: {_accepted(f)}")
        return
    kind = str(f.type).replace(" | None", "")
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if ok and meta["choices"] is not None:
        ok = value in meta["choices"]
    if ok and meta["low"] is not None:
        ok = value >= meta["low"]
    if ok and meta["high"] is not None:
        ok = value <= meta["high"]
    if not ok:
        raise SettingsError(f"{meta['env']}={value!r} is invalid: {_accepted(f)}")


def settings_table() -> str:
    """The settings as a Markdown table (the README's copy is checked against it)."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = (
            "(empty)"
            if default is None
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        rows.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['doc']} |")
    return "\n".join(rows)
