"""Where the middleware sits among Django's own, and answers that belong to one visitor.

Django runs ``MIDDLEWARE`` top to bottom on the way in and bottom to top on the way
out. Sessions, CSRF, authentication, messages and locale add ``Set-Cookie`` and
``Vary: Cookie`` / ``Vary: Accept-Language`` on the way out: the cache must be listed
above them to see those headers on the answer it records. A misplacement is logged
once, when Django builds its middleware; whatever the placement, an answer produced
while the request's session was read, a CSRF token was handed out or messages were
used, or one that says ``Vary: Cookie``, is not stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string

__all__ = ["MUST_BE_BELOW", "forget_warnings", "misplaced_above", "private_reason", "warn_once"]

log = logging.getLogger("semcache")

MUST_BE_BELOW: tuple[str, ...] = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.RemoteUserMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
)
"""Middleware (and their subclasses) whose effect on the answer the cache must see:
they set cookies or ``Vary``, or make the answer depend on the session."""

_warned: set[tuple[str, ...]] = set()
_lock = threading.Lock()


def _class_names(entry: str) -> set[str]:
    """Dotted names of ``entry``'s class and its bases; just ``entry`` if it won't import."""
    try:
        cls = import_string(entry)
    except Exception:
        return {entry}
    mro = getattr(cls, "__mro__", (cls,))
    return {entry} | {f"{c.__module__}.{c.__qualname__}" for c in mro}


def misplaced_above(middleware: Sequence[str], own: type) -> list[str]:
    """The entries of ``MUST_BE_BELOW`` listed above the first ``own`` entry."""
    own_names = {f"{own.__module__}.{own.__qualname__}", "semcache_django.SemanticCacheMiddleware"}
    above: list[str] = []
    for entry in middleware:
        names = _class_names(entry)
        if names & own_names:
            return above
        if names & set(MUST_BE_BELOW):
            above.append(entry)
    return []  # not listed (built by hand): nothing to say


def warn_once(middleware: Sequence[str], own: type) -> None:
    """Log a misplacement of ``own`` in ``middleware``, once per distinct list."""
    key = tuple(middleware)
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    above = misplaced_above(middleware, own)
    if not above:
        return
    listed = ", ".join(above)
    log.warning(
        "semcache: 'semcache_django.SemanticCacheMiddleware' is listed below %s in "
        "MIDDLEWARE, so it records answers before they add Set-Cookie and Vary "
        "headers. Answers that read the session are still not stored, but move "
        "'semcache_django.SemanticCacheMiddleware' above them (right after "
        "SecurityMiddleware) so the cache sees each answer as it is sent.",
        listed,
    )


def forget_warnings() -> None:
    """Log misplacements again (tests, settings changed at run time)."""
    with _lock:
        _warned.clear()


def _vary_names(response: HttpResponseBase) -> set[str]:
    value = response.headers.get("Vary") or ""
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def private_reason(request: HttpRequest, response: HttpResponseBase) -> str | None:
    """Why ``response`` belongs to this visitor only, or ``None``.

    Read after the view (and, placed as recommended, Django's middleware) answered.
    """
    if "cookie" in _vary_names(response):
        return "vary: cookie"
    session = getattr(request, "session", None)
    if session is not None and (
        getattr(session, "accessed", False) or getattr(session, "modified", False)
    ):
        return "the session was read"
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return "a CSRF token was handed out"
    messages = getattr(request, "_messages", None)
    if messages is not None and (
        getattr(messages, "used", False) or getattr(messages, "added_new", False)
    ):
        return "messages were read or added"
    return None
