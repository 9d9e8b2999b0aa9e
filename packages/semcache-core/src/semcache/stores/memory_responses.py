"""In-process response store with TTL, LRU bound and an optional on-disk copy."""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from semcache.stores._journal import Journal
from semcache.tags import Tag, entry_tags
from semcache.text import hash_text
from semcache.types import Entry, decode_entry, encode_entry

__all__ = ["ALIAS_OVERHEAD", "ENTRY_OVERHEAD", "MAX_ALIASES", "MemoryResponseStore", "entry_bytes"]

log = logging.getLogger("semcache")

# Aliases one entry keeps at most: a hot entry met by a long tail of one-off paraphrases
# stops gathering them there (those paraphrases are embedded, as without aliases).
MAX_ALIASES = 64
# What an alias counts against max_bytes besides its text (key, index slot; an estimate).
ALIAS_OVERHEAD = 160

# Journal rows of aliases (see add_alias) are keyed apart from entry ids (hex hashes).
_ALIAS_ROW = "alias:"

# What an entry costs besides its payload and texts: the Entry object, its metadata and
# the index slots that find it (an estimate, not a measure).
ENTRY_OVERHEAD = 512


def entry_bytes(entry: Entry) -> int:
    """What an entry counts against ``max_bytes``: payload bytes, query and context
    characters, the context vector and ``ENTRY_OVERHEAD``."""
    vector = entry.context_vector
    return (
        len(entry.payload)
        + len(entry.query)
        + len(entry.context or "")
        + (int(getattr(vector, "nbytes", 0)) if vector is not None else 0)
        + ENTRY_OVERHEAD
    )


class MemoryResponseStore:
    """The embedded default :class:`~semcache.protocols.ResponseStore`.

    Expired entries are never returned, are dropped when met and are swept by
    :meth:`expire`. The least recently used entry is evicted past ``max_entries`` or when
    the entries would count more than ``max_bytes`` (see :func:`entry_bytes`); an entry
    larger than the whole budget is not stored. With ``path`` set, a SQLite copy is
    reloaded at start-up.

    Aliases (:meth:`add_alias`: more exact keys of an entry) live and die with their
    entry: evicted, expired, deleted, replaced or flushed with it, and kept in the
    on-disk copy with it.
    """

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        max_bytes: int | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._exact: dict[tuple[str, str], str] = {}
        self._aliases: dict[str, set[tuple[str, str]]] = {}  # entry id -> its alias keys
        self._journal = Journal(Path(path)) if path else None
        self._persisted_closed = False
        if self._journal is not None:
            now = time.time()
            aliases = []
            for entry_id, _part, blob, expires_at in self._journal.rows():
                if entry_id.startswith(_ALIAS_ROW):
                    aliases.append((entry_id, _part, blob))
                    continue
                if expires_at is not None and expires_at <= now:
                    self._journal.delete(entry_id)
                    continue
                try:
                    entry = decode_entry(blob)
                except Exception as exc:  # a row this version cannot read: skipped
                    log.warning(
                        "semcache: skipped unreadable entry %s in %s (%s)", entry_id, path, exc
                    )
                    self._journal.delete(entry_id)
                    continue
                if self._fits(entry):
                    self._put(entry)
                else:
                    self._journal.delete(entry_id)
            self._evict()
            for row_key, part, blob in aliases:
                try:
                    target, query = json.loads(blob)
                except Exception:
                    target, query = None, None
                if not self._put_alias(part, query, target):
                    self._journal.delete(row_key)

    async def get(self, entry_id: str) -> Entry | None:
        entry = self._entries.get(entry_id)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= time.time():
            self._drop(entry_id)
            return None
        self._entries.move_to_end(entry_id)
        return entry

    async def get_many(self, entry_ids: Sequence[str]) -> list[Entry | None]:
        return [await self.get(entry_id) for entry_id in entry_ids]

    async def set(self, entry: Entry, ttl: int | None) -> None:
        if self._persisted_closed:
            raise RuntimeError("the store is closed: the entry would not reach its file")
        old = self._entries.get(entry.entry_id)
        if old is not None:
            self._drop(old.entry_id)
        if not self._fits(entry):
            return
        self._put(entry)
        if self._journal is not None:
            self._journal.put(
                entry.entry_id, entry.partition, encode_entry(entry), entry.expires_at
            )
        self._evict()

    async def replace_metadata(self, entry: Entry, metadata: Mapping[str, Any]) -> bool:
        if self._persisted_closed:
            return False  # the write would not reach the file
        current = self._entries.get(entry.entry_id)
        if current is None or current != entry:
            return False  # gone, or changed since it was read: never brought back
        if current.expires_at is not None and current.expires_at <= time.time():
            self._drop(current.entry_id)
            return False
        updated = replace(current, metadata=dict(metadata))
        # In place: its size, LRU slot, exact key and aliases stay as they are.
        self._entries[current.entry_id] = updated
        if self._journal is not None:
            self._journal.put(
                updated.entry_id, updated.partition, encode_entry(updated), updated.expires_at
            )
        return True

    async def get_exact(self, partition: str, query: str) -> str | None:
        entry_id = self._exact.get((partition, query))
        if entry_id is None:
            return None
        return entry_id if await self.get(entry_id) is not None else None

    async def get_exact_entry(self, partition: str, query: str) -> Entry | None:
        entry_id = self._exact.get((partition, query))
        return None if entry_id is None else await self.get(entry_id)

    async def add_alias(self, partition: str, query: str, entry: Entry) -> bool:
        if self._persisted_closed:
            return False
        current = self._entries.get(entry.entry_id)
        if current is None or (current.created_at, current.query) != (
            entry.created_at,
            entry.query,
        ):
            return False  # gone or replaced since it was read
        if (partition, query) in self._aliases.get(entry.entry_id, ()):
            return True  # already there
        if not self._put_alias(partition, query, entry.entry_id):
            return False
        self._evict()  # aliases count against max_bytes
        if entry.entry_id not in self._entries:
            return False
        if self._journal is not None:
            self._journal.put(
                _alias_row(partition, query),
                partition,
                json.dumps([entry.entry_id, query]).encode(),
                entry.expires_at,
            )
        return True

    async def delete(self, entry_id: str) -> bool:
        if entry_id not in self._entries:
            return False
        self._drop(entry_id)
        return True

    async def delete_if_current(self, entry: Entry) -> bool:
        # No await between the comparison and the drop: atomic on the event loop.
        if self._persisted_closed:
            return False  # the delete would not reach the file: the entry would come back
        current = self._entries.get(entry.entry_id)
        if current is None or current != entry:
            return False  # gone, or changed since it was read: a new answer is kept
        self._drop(current.entry_id)
        return current.expires_at is None or current.expires_at > time.time()

    async def flush(self, partition: str | None = None) -> int:
        doomed = [
            e.entry_id
            for e in self._entries.values()
            if partition is None or e.partition == partition
        ]
        for entry_id in doomed:
            self._drop(entry_id)
        return len(doomed)

    async def partitions_where(self, tags: Sequence[Tag]) -> list[str]:
        # In memory and bounded by max_entries: a scan is the index.
        wanted = set(tags)
        found = {
            e.partition for e in self._entries.values() if wanted <= set(entry_tags(e.metadata))
        }
        return sorted(found)

    async def count(self) -> int:
        return len(self._entries)

    def bytes_used(self) -> int:
        """Bytes counted against ``max_bytes`` by the entries held now (and their
        aliases: each its text and ``ALIAS_OVERHEAD``)."""
        return self._bytes

    async def expire(self, now: float) -> int:
        """Drop every entry expired at ``now``; return how many."""
        doomed = [
            entry_id
            for entry_id, e in self._entries.items()
            if e.expires_at is not None and e.expires_at <= now
        ]
        for entry_id in doomed:
            self._drop(entry_id)
        return len(doomed)

    async def ping(self) -> None:
        return None

    async def persist(self, within: float | None = None) -> bool:
        """Write what the on-disk copy has queued now; True once written (or none kept)."""
        return True if self._journal is None else await self._journal.flush(within)

    def journal_stats(self) -> dict[str, Any] | None:
        """The on-disk copy's writer: rows pending, written, failed, dropped (None without one)."""
        return self._journal.stats() if self._journal is not None else None

    async def aclose(self) -> None:
        journal = self._journal
        if journal is not None:
            self._journal = None
            self._persisted_closed = True  # later writes would not reach the file: refused
            await journal.aclose()

    def _fits(self, entry: Entry) -> bool:
        return self.max_bytes is None or entry_bytes(entry) <= self.max_bytes

    def _put(self, entry: Entry) -> None:
        self._entries[entry.entry_id] = entry
        self._bytes += entry_bytes(entry)
        key = (entry.partition, entry.query)
        holder = self._exact.get(key)
        if holder is not None and key in self._aliases.get(holder, ()):
            # The text now has an entry of its own: that replaces the alias.
            self._aliases[holder].discard(key)
            self._bytes -= len(key[1]) + ALIAS_OVERHEAD
            if self._journal is not None:
                self._journal.delete(_alias_row(*key))
        self._exact[key] = entry.entry_id

    def _put_alias(self, partition: str, query: object, entry_id: object) -> bool:
        entry = self._entries.get(entry_id) if isinstance(entry_id, str) else None
        if entry is None or entry.partition != partition or not isinstance(query, str):
            return False  # never an alias across partitions
        if entry.expires_at is not None and entry.expires_at <= time.time():
            return False
        key = (partition, query)
        holder = self._exact.get(key)
        if holder is not None and holder != entry.entry_id and holder in self._entries:
            return False  # never hides an entry's own text (nor an earlier alias)
        aliases = self._aliases.setdefault(entry.entry_id, set())
        if key in aliases:
            return True
        if len(aliases) >= MAX_ALIASES:
            return False
        self._exact[key] = entry.entry_id
        aliases.add(key)
        self._bytes += len(query) + ALIAS_OVERHEAD
        return True

    def _drop(self, entry_id: str) -> None:
        entry = self._entries.pop(entry_id)
        self._bytes -= entry_bytes(entry)
        key = (entry.partition, entry.query)
        if self._exact.get(key) == entry_id:
            del self._exact[key]
        aliases = list(self._aliases.pop(entry_id, ()))
        for alias in aliases:
            self._bytes -= len(alias[1]) + ALIAS_OVERHEAD
            if self._exact.get(alias) == entry_id:
                del self._exact[alias]
        if self._journal is not None:
            self._journal.delete(entry_id)
            for alias in aliases:
                self._journal.delete(_alias_row(*alias))

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        ):
            self._drop(next(iter(self._entries)))


def _alias_row(partition: str, query: str) -> str:
    return _ALIAS_ROW + hash_text(partition + "\x00" + query)
