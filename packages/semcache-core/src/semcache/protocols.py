"""The three async protocols the engine composes, plus the verifier.

Any object with these methods works; nothing needs to inherit from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from semcache.types import Entry, Matrix, Vector, VectorMatch

__all__ = [
    "ConditionalDelete",
    "ConditionalMetadata",
    "Embedder",
    "ExactAliases",
    "PartitionIndex",
    "ResponseStore",
    "VectorStore",
    "Verifier",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors: a batch in, a batch out."""

    @property
    def model_id(self) -> str:
        """Stable id of everything that changes the vectors (model, dimensions, quantisation)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of each vector. Reading it never does I/O.

        An embedder that learns its size from the model or the API (an HTTP model this
        package has no table entry for) also defines ``async probe_dimension() -> int``;
        until that has run, ``dimension`` (and a ``model_id`` that names the size) raise
        :class:`~semcache.errors.EmbedderNotReadyError`. The cache awaits it on start
        (see :func:`semcache.embedder.resolve_dimension`).
        """
        ...

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """One row per text, in order."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class VectorStore(Protocol):
    """Nearest-neighbour search over entry vectors, filtered by partition.

    One store instance serves one embedder configuration (model id + dimension), so
    vectors from different models never meet.
    """

    async def add(
        self, entry_id: str, partition: str, vector: Vector, expires_at: float | None
    ) -> None: ...

    async def search(
        self, partition: str, vector: Vector, k: int, threshold: float
    ) -> list[VectorMatch]:
        """Up to ``k`` entries of ``partition`` with similarity >= ``threshold``, best first."""
        ...

    async def delete(self, entry_ids: Sequence[str]) -> None: ...

    async def expire(self, now: float) -> int:
        """Delete entries that expired before ``now``; return how many."""
        ...

    async def flush(self, partition: str | None = None) -> None:
        """Delete every entry, or every entry of one partition."""
        ...

    async def count(self) -> int: ...

    async def ping(self) -> None:
        """Raise if the backend is unreachable."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ResponseStore(Protocol):
    """Stored answers by entry id, with TTL, plus the exact-match index."""

    async def get(self, entry_id: str) -> Entry | None: ...

    async def get_many(self, entry_ids: Sequence[str]) -> list[Entry | None]: ...

    async def set(self, entry: Entry, ttl: int | None) -> None:
        """Store the entry and its exact-match key (partition + query) together."""
        ...

    async def get_exact(self, partition: str, query: str) -> str | None:
        """Entry id stored for exactly this partition and normalised query."""
        ...

    async def delete(self, entry_id: str) -> bool: ...

    async def flush(self, partition: str | None = None) -> int:
        """Delete every entry, or every entry of one partition; return how many."""
        ...

    async def count(self) -> int: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PartitionIndex(Protocol):
    """Optional for a :class:`ResponseStore`: the partitions whose entries carry given
    partition tags (:mod:`semcache.tags`), so :meth:`SemanticCache.flush_where
    <semcache.SemanticCache.flush_where>` can flush by path, model, tenant or credential.

    A store without it still works; ``flush_where`` then raises
    :class:`~semcache.errors.UnsupportedOperationError`.
    """

    async def partitions_where(self, tags: Sequence[tuple[str, str]]) -> list[str]:
        """Partitions holding entries whose metadata carry every one of ``tags`` (stored
        form, see :func:`semcache.tags.entry_tags`). May name partitions that have since
        emptied; must name every partition holding such an entry."""
        ...


@runtime_checkable
class ExactAliases(Protocol):
    """Optional for a :class:`ResponseStore`: more texts for the exact index, and an exact
    lookup that returns the entry itself.

    After a semantic hit the cache calls ``add_alias`` in the background, so the same
    paraphrase is an exact hit the next time and costs no embedding. A store without
    these methods still works: each method is looked up on its own (``getattr``), and
    without them every repeat of a paraphrase is embedded again.
    """

    async def add_alias(self, partition: str, query: str, entry: Entry) -> bool:
        """Make ``query`` (in ``partition``) an exact key of ``entry``.

        The alias names the same entry id, expires when the entry does, lives in the
        entry's partition only (``partition`` must be ``entry.partition``, else nothing
        is stored), never replaces an exact key that names a live entry, and is removed
        when the entry is deleted, replaced, flushed or evicted. True when stored.
        """
        ...

    async def get_exact_entry(self, partition: str, query: str) -> Entry | None:
        """The live entry the exact index names for ``partition`` + ``query`` (its own
        text or an alias), index and payload in one call (one round trip)."""
        ...


@runtime_checkable
class ConditionalMetadata(Protocol):
    """Optional for a :class:`ResponseStore`: a metadata write that applies only to the
    version of the entry it was computed from.

    The cache writes what audits learn about an entry (:mod:`semcache.audit.learner`)
    into its metadata. Between reading the entry and writing it back, the entry may be
    deleted, flushed, evicted or stored again with a new answer, by this process or
    another one sharing the store; a plain :meth:`ResponseStore.set` would then bring
    the old entry back. A store without this method still works: the cache reads the
    entry again just before its ``set`` and writes only when nothing changed, which
    narrows the window to one round trip but cannot close it.
    """

    async def replace_metadata(self, entry: Entry, metadata: Mapping[str, Any]) -> bool:
        """Give the stored entry ``entry.entry_id`` this ``metadata``, only while it is
        still ``entry`` (equal to it, as :meth:`ResponseStore.get` returned it: the same
        answer with the same metadata). True when written.

        Atomic against every other write to the entry, in every process sharing the
        store. A missing or expired entry is never recreated, and one that changed since
        it was read is left as it is (the caller reads it again). Everything else is
        kept: payload, expiry, exact key, aliases.
        """
        ...


@runtime_checkable
class ConditionalDelete(Protocol):
    """Optional for a :class:`ResponseStore`: a delete that applies only to the version
    of the entry it was decided on.

    The cache evicts an answer reported wrong (:meth:`SemanticCache.report_wrong_hit
    <semcache.SemanticCache.report_wrong_hit>` with the answer's version) only while the
    entry still holds that answer. Between reading the entry and deleting it, the entry
    may be stored again with a new answer, by this process or another one sharing the
    store; a plain :meth:`ResponseStore.delete` would then evict the new answer. A store
    without this method still works: the cache reads the entry again just before its
    ``delete`` and deletes only when nothing changed, which narrows the window to one
    round trip but cannot close it.
    """

    async def delete_if_current(self, entry: Entry) -> bool:
        """Delete the stored entry ``entry.entry_id`` (payload, exact key, aliases), only
        while it is still ``entry`` (equal to it, as :meth:`ResponseStore.get` returned
        it). True when deleted.

        Atomic against every other write to the entry, in every process sharing the
        store. A missing or expired entry, or one that changed since it was read (a new
        answer, or new metadata), is left as it is and False returned: the caller reads
        it again. Nothing of the entry is removed unless its payload is.
        """
        ...


@runtime_checkable
class Verifier(Protocol):
    """Second opinion on a vector-search candidate before it is served.

    Optional: ``verdict(query, candidate, similarity)`` returning an object whose ``rule``
    names what rejected the candidate (``None``: serve it), reported per rule in the
    metrics; ``use_threshold(threshold)``, told the cache's threshold on start; and a
    ``search_floor`` attribute: the cache then searches down to it and calls
    ``verdict(..., threshold=...)`` with the lookup's own threshold, which candidates
    below it fall short of (:class:`~semcache.verify.judge.GreyZoneVerifier`).
    """

    async def verify(self, query: str, candidate: str, similarity: float) -> bool:
        """True when ``candidate``'s stored answer is right for ``query``.

        ``query`` and ``candidate`` are normalised question texts. Runs on every semantic
        candidate, so it should be fast (the default costs microseconds).
        """
        ...
