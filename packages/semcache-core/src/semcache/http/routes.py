"""Per-route cache policies: how the requests to one path pattern use the cache.

A route names a glob pattern of paths (``*`` matches ``/`` too) and a mode:
``semantic`` (the default rule), ``exact`` (exact repeats only, never embedded) or
``off`` (not touched at all), with its own TTL and threshold, and the request headers
or JSON body fields that identify the tenant on that route. Routes are ordered: the
first whose pattern matches the request's path decides; a path no route matches keeps
the adapter's defaults. Tenant values add to the partition; they never replace the
credential, which stays in it as before.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = ["ROUTE_MODES", "RoutePolicy", "decoded_path", "match_route"]

ROUTE_MODES = ("semantic", "exact", "off")
"""A route's modes: matched by meaning, matched as the same text only, or not cached."""


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """How requests to paths matching ``path`` use the cache.

    ``ttl`` (seconds; 0 keeps entries until evicted) and ``threshold`` (cosine
    similarity) replace the settings' for this route when set. ``tenant_headers`` and
    ``tenant_fields`` (dotted paths into the JSON body, e.g. ``metadata.org_id``) name
    the values that identify the tenant: they are added to the partition.
    """

    path: str
    mode: str = "semantic"
    ttl: int | None = None
    threshold: float | None = None
    tenant_headers: tuple[str, ...] = ()
    tenant_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ValueError("path: expected a non-empty glob pattern")
        if self.mode not in ROUTE_MODES:
            raise ValueError(f"mode: expected one of {', '.join(ROUTE_MODES)}")
        if self.ttl is not None and (
            isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or self.ttl < 0
        ):
            raise ValueError("ttl: expected an integer of at least 0")
        if self.threshold is not None and (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not 0.0 <= self.threshold <= 1.0
        ):
            raise ValueError("threshold: expected a number between 0 and 1")
        # Header names are compared lower case, as every adapter hands them over.
        object.__setattr__(
            self, "tenant_headers", tuple(h.strip().lower() for h in self.tenant_headers)
        )
        object.__setattr__(self, "tenant_fields", tuple(self.tenant_fields))

    def matches(self, path: str) -> bool:
        return fnmatch.fnmatchcase(path, self.path)

    def tenant(self, headers: Sequence[tuple[str, str]], body: Any) -> dict[str, Any] | None:
        """The route's tenant values of one request (``None`` when it names none).

        A value the request lacks is ``None``: a request without it gets a partition of
        its own, never the one of a request that has it.
        """
        if not self.tenant_headers and not self.tenant_fields:
            return None
        found: dict[str, Any] = {}
        for name in self.tenant_headers:
            found["header:" + name] = next((v for k, v in headers if k == name), None)
        for dotted in self.tenant_fields:
            found["field:" + dotted] = _field(body, dotted)
        return found


def _field(body: Any, dotted: str) -> Any:
    value = body
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def match_route(routes: Sequence[RoutePolicy], path: str) -> RoutePolicy | None:
    """The first route whose pattern matches ``path`` (percent-decoded, as the ASGI
    ``path`` is), or ``None``.

    Decoded, so a route cannot be dodged by spelling its path with percent-escapes.
    """
    for route in routes:
        if route.matches(path):
            return route
    return None


def decoded_path(raw: str) -> str:
    """A path as the client sent it, percent-decoded once (what :func:`match_route` takes)."""
    return unquote(raw)
