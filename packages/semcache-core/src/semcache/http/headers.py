"""The header names semcache reads and writes, in one place.

Names are lower case, as the adapters compare them.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "HEADER_ENTRY",
    "HEADER_ENTRY_VERSION",
    "HEADER_MODE",
    "HEADER_SIMILARITY",
    "HEADER_STATUS",
    "HEADER_TTL",
    "OWN_HEADERS",
    "marked_headers",
]

HEADER_STATUS = "x-semcache"
"""Response header: ``hit``, ``miss`` or ``bypass``."""
HEADER_SIMILARITY = "x-semcache-similarity"
"""Response header on a hit: cosine similarity of the stored question (1.0000 when exact)."""
HEADER_ENTRY = "x-semcache-entry"
"""Response header on a hit: the id of the entry served (an operator can delete it)."""
HEADER_ENTRY_VERSION = "x-semcache-entry-version"
"""Response header on a hit: which answer of the entry was served (the entry may be
stored again under the same id); sent with feedback, a report on an answer replaced since
leaves the new one alone."""
HEADER_TTL = "x-semcache-ttl"
"""Request header: seconds to keep this answer (capped at the ``max_ttl`` setting; 0: do not store)."""

HEADER_MODE = "x-semcache-mode"
"""Request header: ``read-only`` (serve from the cache, never store) or ``write-only``
(always ask the upstream, store its answer); honoured only with the ``client_modes`` setting."""

OWN_HEADERS = frozenset({HEADER_STATUS, HEADER_SIMILARITY, HEADER_ENTRY, HEADER_ENTRY_VERSION})
"""Response headers semcache sets; an app's own copies are replaced, and never stored."""


def marked_headers(headers: Iterable[tuple[str, str]], status: str) -> list[tuple[str, str]]:
    """``headers`` with our ``X-Semcache`` status instead of any the app set."""
    kept = [(name, value) for name, value in headers if name.lower() not in OWN_HEADERS]
    kept.append((HEADER_STATUS, status))
    return kept
