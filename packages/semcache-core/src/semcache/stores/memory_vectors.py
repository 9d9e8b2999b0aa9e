"""In-process vector index: exact search for small partitions, HNSW for large ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semcache.stores._journal import Journal
from semcache.types import Vector, VectorMatch

__all__ = ["MemoryVectorStore"]

log = logging.getLogger("semcache")

_NO_EXPIRY = np.inf
_CATCH_UP_ON_LOOP = 256
# What an entry costs besides its float32 row, counted against ``max_bytes``: its expiry,
# id, label and the dictionary slots that find it (an estimate, not a measure).
ENTRY_OVERHEAD = 256


class _Partition:
    """Rows of one partition in a growable matrix; deletes swap the last row in.

    Storage starts at one row and doubles when full (halves when a quarter full), so a
    flood of one-entry partitions costs one row each, not a preallocated block.
    """

    def __init__(self, dimension: int) -> None:
        self.ids: list[str] = []
        self.labels: list[int] = []
        self.matrix = np.zeros((1, dimension), dtype=np.float32)
        self.expires = np.full(1, _NO_EXPIRY, dtype=np.float64)
        self.row: dict[str, int] = {}
        self.ann: Any = None  # hnswlib Index once the partition is large
        self.ann_building = False
        self.ann_added: list[int] = []
        self.ann_removed: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, entry_id: str, label: int, vector: Vector, expires_at: float | None) -> None:
        n = len(self.ids)
        if n == len(self.matrix):
            self._resize(2 * n)
        self.matrix[n] = vector
        self.expires[n] = _NO_EXPIRY if expires_at is None else expires_at
        self.ids.append(entry_id)
        self.labels.append(label)
        self.row[entry_id] = n

    def remove(self, entry_id: str) -> int:
        """Remove a row; return its label."""
        i = self.row.pop(entry_id)
        label = self.labels[i]
        last = len(self.ids) - 1
        if i != last:
            self.matrix[i] = self.matrix[last]
            self.expires[i] = self.expires[last]
            self.ids[i] = self.ids[last]
            self.labels[i] = self.labels[last]
            self.row[self.ids[i]] = i
        self.ids.pop()
        self.labels.pop()
        if 8 <= len(self.ids) * 4 <= len(self.matrix):
            self._resize(len(self.matrix) // 2)
        return label

    def _resize(self, rows: int) -> None:
        n = len(self.ids)
        matrix = np.zeros((rows, self.matrix.shape[1]), dtype=np.float32)
        matrix[:n] = self.matrix[:n]
        expires = np.full(rows, _NO_EXPIRY, dtype=np.float64)
        expires[:n] = self.expires[:n]
        self.matrix, self.expires = matrix, expires


class MemoryVectorStore:
    """The embedded default :class:`~semcache.protocols.VectorStore`.

    Partitions below ``ann_threshold`` rows are searched exactly (one matrix-vector
    product, well under a millisecond at a few thousand rows). A partition that grows
    past it gets an HNSW index (hnswlib), built in a worker thread while exact search
    keeps answering. Bounded by ``max_entries`` and by ``max_bytes``, each entry counted
    as ``entry_bytes`` (its float32 row plus ``ENTRY_OVERHEAD``): the least recently added
    or matched entry is evicted first. A partition's storage grows with its rows, so
    memory follows what is stored. With ``path`` set, a SQLite copy survives restarts.
    """

    def __init__(
        self,
        dimension: int,
        *,
        max_entries: int = 100_000,
        max_bytes: int | None = None,
        path: str | Path | None = None,
        ann_threshold: int = 20_000,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        hnsw_ef_search: int = 128,
    ) -> None:
        self.dimension = dimension
        self.max_entries = max_entries
        self.entry_bytes = 4 * dimension + ENTRY_OVERHEAD
        # The byte budget as an entry count: every vector costs the same.
        self._max_rows = max_entries
        if max_bytes is not None:
            self._max_rows = min(max_entries, max_bytes // self.entry_bytes)
        self.ann_threshold = ann_threshold
        self._hnsw = (hnsw_m, hnsw_ef_construction, hnsw_ef_search)
        self._parts: dict[str, _Partition] = {}
        self._lru: OrderedDict[str, str] = OrderedDict()  # entry id -> partition
        self._labels: dict[int, str] = {}
        self._next_label = 0
        self._builds: set[asyncio.Task[None]] = set()
        self._loading = False
        self._journal = Journal(Path(path)) if path else None
        self._persisted_closed = False
        if self._journal is not None:
            self._load(self._journal)

    def _load(self, journal: Journal) -> None:
        # Index builds wait until everything is loaded (the first search starts them),
        # so loaded rows never queue up as one-by-one additions to a half-built index.
        self._loading = True
        now = time.time()
        try:
            for entry_id, partition, blob, expires_at in journal.rows():
                if expires_at is not None and expires_at <= now:
                    journal.delete(entry_id)
                    continue
                if len(blob) != 4 * self.dimension:  # not a vector of this size: skipped
                    continue
                vector = np.frombuffer(blob, dtype=np.float32)
                self._insert(entry_id, partition, vector, expires_at)
            self._evict()
        finally:
            self._loading = False

    # -- protocol ---------------------------------------------------------------

    async def add(
        self, entry_id: str, partition: str, vector: Vector, expires_at: float | None
    ) -> None:
        if self._persisted_closed:
            raise RuntimeError("the store is closed: the entry would not reach its file")
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self.dimension,):
            raise ValueError(f"vector has {vector.shape[0]} dimensions, expected {self.dimension}")
        if entry_id in self._lru:
            self._remove(entry_id)
        self._insert(entry_id, partition, vector, expires_at)
        if self._journal is not None:
            self._journal.put(entry_id, partition, vector.tobytes(), expires_at)
        for evicted in self._evict():
            if self._journal is not None:
                self._journal.delete(evicted)

    async def search(
        self, partition: str, vector: Vector, k: int, threshold: float
    ) -> list[VectorMatch]:
        part = self._parts.get(partition)
        if part is None or not part.ids:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        now = time.time()
        if part.ann is None and not part.ann_building and len(part) >= self.ann_threshold:
            self._start_ann_build(part)
        if part.ann is not None and not part.ann_building:
            candidates = self._search_ann(part, q, k)
        else:
            candidates = self._search_exact(part, q, k, now)
        matches = []
        for entry_id, similarity in candidates:
            if similarity < threshold:
                continue
            row = part.row.get(entry_id)
            if row is None or part.expires[row] <= now:
                continue
            matches.append(VectorMatch(entry_id, similarity))
            self._lru.move_to_end(entry_id)
        return matches[:k]

    async def delete(self, entry_ids: Sequence[str]) -> None:
        for entry_id in entry_ids:
            if entry_id in self._lru:
                self._remove(entry_id)
                if self._journal is not None:
                    self._journal.delete(entry_id)

    async def expire(self, now: float) -> int:
        expired = [
            part.ids[i]
            for part in self._parts.values()
            for i in np.flatnonzero(part.expires[: len(part)] <= now)
        ]
        await self.delete(expired)
        return len(expired)

    async def flush(self, partition: str | None = None) -> None:
        if partition is None:
            self._parts.clear()
            self._lru.clear()
            self._labels.clear()
            if self._journal is not None:
                self._journal.clear()
            return
        part = self._parts.get(partition)
        if part is not None:
            await self.delete(list(part.ids))

    async def count(self) -> int:
        return len(self._lru)

    def bytes_used(self) -> int:
        """Bytes counted against ``max_bytes`` (``entry_bytes`` per stored vector)."""
        return len(self._lru) * self.entry_bytes

    async def ping(self) -> None:
        return None

    async def persist(self, within: float | None = None) -> bool:
        """Write what the on-disk copy has queued now; True once written (or none kept)."""
        return True if self._journal is None else await self._journal.flush(within)

    def journal_stats(self) -> dict[str, Any] | None:
        """The on-disk copy's writer: rows pending, written, failed, dropped (None without one)."""
        return self._journal.stats() if self._journal is not None else None

    async def aclose(self) -> None:
        for task in list(self._builds):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        journal = self._journal
        if journal is not None:
            self._journal = None
            self._persisted_closed = True  # later writes would not reach the file: refused
            await journal.aclose()

    # -- internals --------------------------------------------------------------

    def _insert(
        self, entry_id: str, partition: str, vector: Vector, expires_at: float | None
    ) -> None:
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition(self.dimension)
        label = self._next_label
        self._next_label += 1
        part.add(entry_id, label, vector, expires_at)
        self._labels[label] = entry_id
        self._lru[entry_id] = partition
        if part.ann_building:
            part.ann_added.append(label)
        elif part.ann is not None:
            _ann_add(part.ann, [label], vector[None, :])
        elif len(part) >= self.ann_threshold and not self._loading:
            self._start_ann_build(part)

    def _remove(self, entry_id: str) -> None:
        partition = self._lru.pop(entry_id)
        part = self._parts[partition]
        label = part.remove(entry_id)
        del self._labels[label]
        if part.ann_building:
            part.ann_removed.append(label)
        elif part.ann is not None:
            part.ann.mark_deleted(label)
        if not part.ids:
            del self._parts[partition]

    def _evict(self) -> list[str]:
        evicted = []
        while len(self._lru) > self._max_rows:
            entry_id = next(iter(self._lru))
            self._remove(entry_id)
            evicted.append(entry_id)
        return evicted

    def _search_exact(
        self, part: _Partition, q: Vector, k: int, now: float
    ) -> list[tuple[str, float]]:
        n = len(part)
        sims = part.matrix[:n] @ q
        sims[part.expires[:n] <= now] = -np.inf
        top = np.argpartition(-sims, k - 1)[:k] if n > k else np.arange(n)
        top = top[np.argsort(-sims[top])]
        return [(part.ids[i], float(sims[i])) for i in top if sims[i] > -np.inf]

    def _search_ann(self, part: _Partition, q: Vector, k: int) -> list[tuple[str, float]]:
        labels, distances = part.ann.knn_query(q, k=min(k, len(part)))
        return [
            (self._labels[int(label)], 1.0 - float(distance))
            for label, distance in zip(labels[0], distances[0], strict=True)
            if int(label) in self._labels
        ]

    def _start_ann_build(self, part: _Partition) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # loading at start-up outside a loop: the first search builds it
            return
        part.ann_building = True
        labels = np.asarray(part.labels, dtype=np.uint64)
        vectors = part.matrix[: len(part)].copy()
        task = loop.create_task(self._build_ann(part, labels, vectors))
        self._builds.add(task)
        task.add_done_callback(self._builds.discard)

    async def _build_ann(self, part: _Partition, labels: Any, vectors: Any) -> None:
        import hnswlib  # imported only for large partitions

        m, ef_construction, ef_search = self._hnsw

        def build() -> Any:
            index = hnswlib.Index(space="cosine", dim=self.dimension)
            index.init_index(
                max_elements=max(2 * len(labels), 1024),
                ef_construction=ef_construction,
                M=m,
                allow_replace_deleted=True,
            )
            index.set_ef(ef_search)
            index.add_items(vectors, labels, num_threads=1)
            return index

        try:
            index = await asyncio.to_thread(build)
        except Exception as exc:  # exact search keeps working
            log.warning("semcache: HNSW build failed (%s); partition stays on exact search", exc)
            part.ann_building = False
            return
        # Entries added while it was building: catch up in the worker thread too, while
        # there are many, so the event loop only ever adds a handful.
        while len(part.ann_added) > _CATCH_UP_ON_LOOP:
            pending, part.ann_added = part.ann_added, []
            live = [label for label in pending if label in self._labels]
            if live:
                rows = np.stack([part.matrix[part.row[self._labels[label]]] for label in live])
                await asyncio.to_thread(_ann_add, index, live, rows)
        removed = set(part.ann_removed)
        for label in removed:
            with contextlib.suppress(RuntimeError):  # added and removed during the build
                index.mark_deleted(label)
        for label in part.ann_added:
            if label in removed or label not in self._labels:
                continue
            entry_id = self._labels[label]
            _ann_add(index, [label], part.matrix[part.row[entry_id]][None, :])
        part.ann, part.ann_building = index, False
        part.ann_added, part.ann_removed = [], []


def _ann_add(index: Any, labels: list[int], vectors: Any) -> None:
    """Add to an hnswlib index, reusing deleted slots and growing it when full."""
    if index.get_current_count() + len(labels) > index.get_max_elements():
        index.resize_index(2 * index.get_max_elements())
    index.add_items(vectors, labels, num_threads=1, replace_deleted=True)
