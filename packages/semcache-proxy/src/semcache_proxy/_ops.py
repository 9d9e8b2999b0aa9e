"""Operations endpoints: liveness, readiness, metrics and the admin API."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from semcache import CacheUnavailableError, SemanticCache, UnsupportedOperationError
from semcache.audit import Auditor
from semcache.tags import TAG_FIELDS
from semcache.telemetry import SavingsLedger
from semcache_proxy._dashboard import Dashboard
from semcache_proxy._metrics import CONTENT_TYPE_LATEST, ProxyMetrics
from semcache_proxy._server import running_stack
from semcache_proxy.settings import ProxySettings

__all__ = ["OpsEndpoints"]

log = logging.getLogger("semcache.proxy")

READY_CACHE_SECONDS = 1.0
"""A readiness verdict is reused this long: a flood of probes never starves lookups."""


class OpsEndpoints:
    """Answers the configured operations paths; anything else is not theirs."""

    def __init__(
        self,
        cache: SemanticCache,
        metrics: ProxyMetrics,
        savings: SavingsLedger | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.savings = savings
        self.auditor = auditor
        s = cache.settings.group(ProxySettings)
        self.health_path = s.health_path
        self.ready_path = s.ready_path
        self.metrics_path = s.metrics_path
        self.admin_path = s.admin_path.rstrip("/")
        self.admin_token = s.admin_token
        self.dashboard = Dashboard(cache, metrics, self.admin_path)
        self._verdict: tuple[float, int, dict[str, Any]] | None = None
        self._verdict_lock = asyncio.Lock()
        self._server: dict[str, str] | None = None

    def handles(self, path: str) -> bool:
        return path in (self.health_path, self.ready_path, self.metrics_path) or (
            self.admin_token is not None
            and (path == self.admin_path or path.startswith(self.admin_path + "/"))
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if self._server is None:  # fixed for the process's life: seen once
            self._server = running_stack(send)
        try:
            response = await self._respond(request)
        except CacheUnavailableError as exc:
            # A store failed or did not answer within the lookup budget (or the cache has
            # not started): the operator is told so, and to send it again. The message
            # names no store address and no entry.
            log.warning("semcache proxy: %s %s: %s", request.method, request.url.path, exc)
            response = _error(503, "cache_unavailable", str(exc))
        except Exception as exc:
            # A store down, a cache that cannot start, a bug: the operator gets a 503
            # that says so, never a bare 500. Details go to the log (a message may hold
            # a store's address), the type to the answer.
            log.exception("semcache proxy: %s %s failed", request.method, request.url.path)
            message = f"the cache or one of its stores failed ({type(exc).__name__})"
            response = _error(503, "cache_unavailable", message)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        path = request.url.path
        if path == self.health_path:
            return JSONResponse({"status": "ok"})
        if path == self.ready_path:
            return await self._ready()
        if path == self.metrics_path:
            return Response(self.metrics.export(), media_type=CONTENT_TYPE_LATEST)
        return await self._admin(request, path[len(self.admin_path) :])

    async def _ready(self) -> Response:
        if not self.cache.started:
            return JSONResponse({"status": "starting"}, status_code=503)
        async with self._verdict_lock:  # concurrent probes share one check
            verdict = self._verdict
            if verdict is None or time.monotonic() - verdict[0] >= READY_CACHE_SECONDS:
                verdict = self._verdict = (time.monotonic(), *await self._check())
        return JSONResponse({**verdict[2], "server": self._server}, status_code=verdict[1])

    async def _check(self) -> tuple[int, dict[str, Any]]:
        """Stores reachable and no breaker open: ready. An open breaker is reported too."""
        stores = await self.cache.ping()
        breakers = {name: b.state for name, b in self.cache.breakers.items()}
        ok = all(stores.values()) and "open" not in breakers.values()
        body = {"status": "ready" if ok else "degraded", "stores": stores, "breakers": breakers}
        return (200 if ok else 503), body

    async def _admin(self, request: Request, sub: str) -> Response:
        method = request.method
        if sub == "/dashboard" or sub.startswith("/dashboard/"):
            # The page holds no data and no secret: it asks for the token itself.
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET")
            if sub == "/dashboard":
                return self.dashboard.page()
            asset = self.dashboard.asset(sub[len("/dashboard/") :])
            return asset or _error(404, "not_found", f"no dashboard file {sub}")
        supplied = request.headers.get("authorization", "")
        expected = f"Bearer {self.admin_token}"
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            return _error(401, "unauthorized", "admin token required")
        if sub == "/stats":
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET")
            return JSONResponse(await self.cache.stats())
        if sub == "/savings":
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET")
            if self.savings is None:
                return _error(404, "not_found", "no savings are counted here")
            return JSONResponse(self.savings.summary())
        if sub == "/overview":
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET")
            overview = await self.dashboard.overview()
            return JSONResponse(overview, headers={"cache-control": "no-store"})
        if sub.startswith("/entries/"):
            if method != "DELETE":
                return _error(405, "method_not_allowed", "use DELETE")
            removed = await self.cache.delete(sub[len("/entries/") :])
            return JSONResponse({"deleted": removed}, status_code=200 if removed else 404)
        if sub == "/flush":
            if method != "POST":
                return _error(405, "method_not_allowed", "use POST")
            return await self._flush(request)
        if sub == "/feedback":
            if method != "POST":
                return _error(405, "method_not_allowed", "use POST")
            return await self._feedback(request)
        if sub == "/audit":
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET")
            if self.auditor is None:
                return _error(404, "not_found", "no audits are counted here")
            return JSONResponse(self.auditor.ledger.summary())
        if sub.startswith("/audit/"):
            if method != "GET":
                return _error(405, "method_not_allowed", "use GET")
            state = await self.cache.audit_state(sub[len("/audit/") :])
            if state is None:
                return _error(404, "not_found", "no such entry, or never audited")
            return JSONResponse(state.to_metadata())
        return _error(404, "not_found", f"no admin endpoint {method} {sub or '/'}")

    async def _feedback(self, request: Request) -> Response:
        """``{"entry": ID, "version": V, "wrong": true}``: the answer served from entry ID
        (its ``X-Semcache-Entry``, and ``X-Semcache-Entry-Version`` V) was wrong; the
        entry is evicted (``"evict": false``: quarantined instead, its threshold learned
        from the report). With a version, an entry stored again since (a new answer) is
        left as it is (404); without one, the report applies to whatever it holds. A store
        that fails or does not answer within the lookup budget (the cache's start
        included): 503, the report may not have been applied (send it again)."""
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad_request", "body must be JSON")
        if not isinstance(body, dict) or set(body) - {"entry", "version", "wrong", "evict"}:
            return _error(400, "bad_request", 'expected {"entry": ID, "wrong": true}')
        entry, wrong, evict = body.get("entry"), body.get("wrong", True), body.get("evict", True)
        version = body.get("version")
        if not isinstance(entry, str) or not entry or len(entry) > 256:
            return _error(400, "bad_request", "entry must be the X-Semcache-Entry value")
        if version is not None and (not isinstance(version, str) or not 0 < len(version) <= 64):
            return _error(400, "bad_request", "version must be the X-Semcache-Entry-Version value")
        if not isinstance(wrong, bool) or not isinstance(evict, bool):
            return _error(400, "bad_request", "wrong and evict must be true or false")
        if self.auditor is not None:
            found = await self.auditor.feedback(entry, wrong=wrong, evict=evict, version=version)
        elif wrong:
            found = await self.cache.report_wrong_hit(entry, evict=evict, version=version)
        else:
            found = True
        if found is None:  # not "no such entry": the eviction may not have happened
            message = "a store failed or timed out; the report may not be applied, send it again"
            return _error(503, "cache_unavailable", message)
        body = {"entry": entry, "wrong": wrong, "evicted": wrong and evict and found}
        return JSONResponse(body, status_code=200 if found else 404)

    async def _flush(self, request: Request) -> Response:
        """Everything, one ``partition``, or by ``path``/``model``/``tenant``/``credential``."""
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return _error(400, "bad_request", "body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "bad_request", "body must be a JSON object")
        unknown = sorted(set(body) - {"partition", *TAG_FIELDS})
        if unknown:
            # A typo must never widen a flush to everything.
            return _error(400, "bad_request", f"unknown field(s) {', '.join(unknown)}")
        partition = body.pop("partition", None)
        if partition is not None and not isinstance(partition, str):
            return _error(400, "bad_request", "partition must be a string")
        if partition is not None and body:
            return _error(400, "bad_request", "give a partition or tags, not both")
        if not body:
            flushed = await self.cache.flush(partition)
            return JSONResponse({"flushed": flushed, "partition": partition})
        for field, value in body.items():
            if not isinstance(value, str) or not value.strip():
                return _error(400, "bad_request", f"{field} must be a non-empty string")
        try:
            flushed = await self.cache.flush_where(**body)
        except UnsupportedOperationError as exc:
            return _error(501, "not_supported", str(exc))
        # Tenants and credentials are echoed masked: a response may be logged.
        where = {k: v if k in ("path", "model") else "<redacted>" for k, v in body.items()}
        return JSONResponse({"flushed": flushed, "where": where})


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)
