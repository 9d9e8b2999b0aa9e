"""Settings of the reverse proxy (group ``proxy``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache.http import GENERATION_PATHS
from semcache.settings import check_declared, setting

__all__ = [
    "ADMIN_PATH",
    "ADMIN_TOKEN",
    "GENERATION_PATHS",
    "HEALTH_PATH",
    "METRICS_PATH",
    "PROXY_EXACT_PATHS",
    "PROXY_HOST",
    "PROXY_PATHS",
    "PROXY_PORT",
    "PROXY_TIMEOUT",
    "PROXY_UPSTREAM",
    "PROXY_VERIFY",
    "PROXY_WORKERS",
    "READY_PATH",
    "ProxySettings",
]

_P = "SEMANTIC_CACHE_"
PROXY_UPSTREAM = _P + "PROXY_UPSTREAM"
PROXY_HOST = _P + "PROXY_HOST"
PROXY_PORT = _P + "PROXY_PORT"
PROXY_WORKERS = _P + "PROXY_WORKERS"
PROXY_TIMEOUT = _P + "PROXY_TIMEOUT"
PROXY_VERIFY = _P + "PROXY_VERIFY"
PROXY_PATHS = _P + "PROXY_PATHS"
PROXY_EXACT_PATHS = _P + "PROXY_EXACT_PATHS"
ADMIN_TOKEN = _P + "ADMIN_TOKEN"
ADMIN_PATH = _P + "ADMIN_PATH"
HEALTH_PATH = _P + "HEALTH_PATH"
READY_PATH = _P + "READY_PATH"
METRICS_PATH = _P + "METRICS_PATH"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Where the proxy listens, what it forwards to, and its operations endpoints."""

    group_name: ClassVar[str] = "proxy"

    proxy_upstream: str = setting(
        PROXY_UPSTREAM, "http://127.0.0.1:11434", "Upstream base URL the proxy forwards to."
    )
    proxy_host: str = setting(PROXY_HOST, "127.0.0.1", "Proxy listen address.")
    proxy_port: int = setting(PROXY_PORT, 8080, "Proxy listen port.", low=1, high=65535)
    proxy_workers: int = setting(PROXY_WORKERS, 1, "Proxy worker processes.", low=1, high=256)
    proxy_timeout: float = setting(
        PROXY_TIMEOUT, 300.0, "Seconds the proxy waits on the upstream.", low=0.001
    )
    proxy_verify: bool = setting(PROXY_VERIFY, True, "Verify the upstream's TLS certificate.")
    proxy_paths: str = setting(
        PROXY_PATHS,
        ",".join(GENERATION_PATHS),
        "Comma-separated glob patterns of the paths the proxy caches (`*` matches `/` too; "
        "`*` alone: every POST); default the generation endpoints of the OpenAI, Anthropic, "
        "Ollama and Gemini APIs. Other requests pass through untouched.",
    )
    proxy_exact_paths: str = setting(
        PROXY_EXACT_PATHS,
        "",
        "Comma-separated glob patterns of further paths cached for exact repeats only "
        "(same text, same model; never embedded), e.g. `*/embeddings,/api/embed`.",
    )
    admin_token: str | None = setting(
        ADMIN_TOKEN, None, "Bearer token for the admin API; unset disables it.", secret=True
    )
    admin_path: str = setting(ADMIN_PATH, "/_semcache/admin", "Admin API path prefix.")
    health_path: str = setting(HEALTH_PATH, "/healthz", "Liveness endpoint path.")
    ready_path: str = setting(READY_PATH, "/readyz", "Readiness endpoint path.")
    metrics_path: str = setting(METRICS_PATH, "/metrics", "Prometheus metrics path.")

    def __post_init__(self) -> None:
        check_declared(self)
