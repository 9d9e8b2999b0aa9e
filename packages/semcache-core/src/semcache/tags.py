"""Partition tags: what an operator knows about cached answers, kept so they can be flushed.

The HTTP layer records in each entry's metadata the request's ``path`` (as sent, percent
encoding kept) and ``model``, and hashes of its ``tenant`` values and ``credential``
values (never the raw values). They are partition tags: every one of them is part of the
partition key, so all entries of one partition carry the same tags, and a response store
can answer "which partitions carry these tags" from a small index (see
:class:`~semcache.protocols.PartitionIndex`). :meth:`SemanticCache.flush_where
<semcache.SemanticCache.flush_where>` then flushes those partitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from semcache.text import hash_text

__all__ = [
    "HASHED_TAGS",
    "TAG_FIELDS",
    "Tag",
    "credential_tag",
    "entry_tags",
    "query_tags",
    "tenant_tag",
]

Tag = tuple[str, str]
"""``(field, value)`` as stored: hashed for :data:`HASHED_TAGS`."""

TAG_FIELDS = ("path", "model", "tenant", "credential")
"""Metadata fields a response store indexes, in this order."""

HASHED_TAGS = frozenset({"tenant", "credential"})
"""Fields stored as hashes: an operator gives the raw value, the store never sees it."""


def _hashed(field: str, value: str) -> str:
    return hash_text(f"semcache-tag\x00{field}\x00{value}")


def credential_tag(value: str) -> str:
    """The stored form of one credential header value. ``Bearer sk-1`` and ``sk-1`` give
    the same tag, so an operator may give the key with or without its scheme."""
    value = value.strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        value = token.strip()
    return _hashed("credential", value)


def tenant_tag(value: str) -> str:
    """The stored form of one tenant value."""
    return _hashed("tenant", value)


def entry_tags(metadata: Mapping[str, Any]) -> list[Tag]:
    """The tags an entry's metadata carries (string values, or lists of them)."""
    found: list[Tag] = []
    for field in TAG_FIELDS:
        value = metadata.get(field)
        values: Iterable[Any] = value if isinstance(value, list | tuple) else (value,)
        found.extend((field, v) for v in values if isinstance(v, str) and v)
    return found


def query_tags(criteria: Mapping[str, str]) -> list[Tag]:
    """An operator's ``{field: raw value}`` as the tags to look for.

    Raises :class:`ValueError` for an unknown field, an empty value or no criteria at all
    (flushing everything is :meth:`SemanticCache.flush <semcache.SemanticCache.flush>`).
    """
    if not criteria:
        raise ValueError(f"give at least one of {', '.join(TAG_FIELDS)}")
    tags: list[Tag] = []
    for field, value in criteria.items():
        if field not in TAG_FIELDS:
            raise ValueError(f"unknown field {field!r}: expected {', '.join(TAG_FIELDS)}")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{field} must be a non-empty string")
        if field == "credential":
            tags.append((field, credential_tag(value)))
        elif field == "tenant":
            tags.append((field, tenant_tag(value)))
        else:
            tags.append((field, value))
    return tags
