"""Contract tests every embedder and store must pass (pytest, asyncio mode ``auto``).

Subclass and provide the fixture:

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        async def vector_store(self):
            store = MyStore(dimension=8)
            yield store
            await store.aclose()

``VectorStoreContract`` stores use dimension :attr:`VectorStoreContract.dimension`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import numpy as np

from semcache.embedder import normalize_rows
from semcache.protocols import (
    ConditionalDelete,
    ConditionalMetadata,
    ExactAliases,
    PartitionIndex,
)
from semcache.tags import credential_tag, tenant_tag
from semcache.types import Entry

__all__ = ["EmbedderContract", "ResponseStoreContract", "VectorStoreContract"]


def _unit(seed: int, dimension: int) -> Any:
    rng = np.random.default_rng(seed)
    return normalize_rows(rng.normal(size=(1, dimension)).astype(np.float32))[0]


class EmbedderContract:
    """Fixture ``embedder``: an open embedder."""

    async def test_shape_and_dtype(self, embedder: Any) -> None:
        m = np.asarray(await embedder.embed(["hello world", "how do I reset my password"]))
        assert m.shape == (2, embedder.dimension)
        assert np.isfinite(m).all()

    async def test_batch_rows_match_single_calls(self, embedder: Any) -> None:
        texts = ["the cat sat on the mat", "quarterly revenue report", "reset my password"]
        batch = normalize_rows(np.asarray(await embedder.embed(texts)))
        for i, text in enumerate(texts):
            single = normalize_rows(np.asarray(await embedder.embed([text])))[0]
            assert float(single @ batch[i]) > 0.99

    async def test_deterministic(self, embedder: Any) -> None:
        a = normalize_rows(np.asarray(await embedder.embed(["same text"])))[0]
        b = normalize_rows(np.asarray(await embedder.embed(["same text"])))[0]
        assert float(a @ b) > 0.999

    async def test_model_id_is_stable_text(self, embedder: Any) -> None:
        # Stored entries are keyed by the model id: it must be plain text, and the same
        # before and after the model runs (a lazy load must not rename it), or every
        # entry stored before the first call is lost.
        model_id, dimension = embedder.model_id, embedder.dimension
        assert isinstance(model_id, str) and model_id.strip() == model_id and model_id, model_id
        assert not any(c.isspace() and c != " " for c in model_id), model_id
        assert isinstance(dimension, int) and dimension > 0, dimension
        await embedder.embed(["the first call may load the model"])
        await embedder.embed(["and a second one"])
        after = (embedder.model_id, embedder.dimension)
        assert after == (model_id, dimension), (
            f"changed by embedding: {(model_id, dimension)} -> {after}"
        )

    async def test_empty_batch(self, embedder: Any) -> None:
        m = np.asarray(await embedder.embed([]))
        assert m.shape[0] == 0

    async def test_concurrent_calls_keep_order(self, embedder: Any) -> None:
        texts = [f"question number {i} about topic {i * 7}" for i in range(8)]
        rows = await asyncio.gather(*(embedder.embed([t]) for t in texts))
        expected = normalize_rows(np.asarray(await embedder.embed(texts)))
        for i, row in enumerate(rows):
            assert float(normalize_rows(np.asarray(row))[0] @ expected[i]) > 0.99


class VectorStoreContract:
    """Fixture ``vector_store``: an empty store for vectors of :attr:`dimension`."""

    dimension = 8

    async def test_add_then_search(self, vector_store: Any) -> None:
        v = _unit(1, self.dimension)
        await vector_store.add("e1", "p", v, None)
        matches = await vector_store.search("p", v, 3, 0.5)
        assert [m.entry_id for m in matches] == ["e1"]
        assert abs(matches[0].similarity - 1.0) < 1e-3

    async def test_best_first_and_threshold(self, vector_store: Any) -> None:
        base = _unit(2, self.dimension)
        near = normalize_rows((base + 0.1 * _unit(3, self.dimension))[None, :])[0]
        far = -base
        await vector_store.add("near", "p", near, None)
        await vector_store.add("far", "p", far, None)
        await vector_store.add("same", "p", base, None)
        matches = await vector_store.search("p", base, 5, 0.5)
        assert [m.entry_id for m in matches] == ["same", "near"]
        assert matches[0].similarity >= matches[1].similarity

    async def test_partitions_never_cross(self, vector_store: Any) -> None:
        v = _unit(4, self.dimension)
        await vector_store.add("a", "tenant-a", v, None)
        assert await vector_store.search("tenant-b", v, 3, 0.0) == []

    async def test_expired_not_returned_and_deleted(self, vector_store: Any) -> None:
        v = _unit(5, self.dimension)
        await vector_store.add("old", "p", v, time.time() - 1)
        await vector_store.add("new", "p", v, time.time() + 3600)
        assert [m.entry_id for m in await vector_store.search("p", v, 3, 0.5)] == ["new"]
        assert await vector_store.expire(time.time()) >= 1
        assert await vector_store.count() == 1

    async def test_delete_and_flush(self, vector_store: Any) -> None:
        v = _unit(6, self.dimension)
        await vector_store.add("x", "p1", v, None)
        await vector_store.add("y", "p2", v, None)
        await vector_store.delete(["x"])
        assert await vector_store.search("p1", v, 3, 0.5) == []
        await vector_store.flush("p2")
        assert await vector_store.count() == 0

    async def test_add_same_id_replaces(self, vector_store: Any) -> None:
        await vector_store.add("x", "p", _unit(7, self.dimension), None)
        v = _unit(8, self.dimension)
        await vector_store.add("x", "p", v, None)
        matches = await vector_store.search("p", v, 3, 0.9)
        assert [m.entry_id for m in matches] == ["x"]
        assert await vector_store.count() == 1

    async def test_ping(self, vector_store: Any) -> None:
        await vector_store.ping()


def _skip_unless(response_store: Any, protocol: type, lacking: str) -> None:
    """Skip the calling test unless the store has the optional ``protocol``'s methods."""
    if not isinstance(response_store, protocol):
        import pytest  # only ever run under pytest

        pytest.skip(f"optional: the store {lacking}")


def _entry(partition: str = "p", query: str | None = None, **kw: Any) -> Entry:
    entry_id = kw.pop("entry_id", uuid.uuid4().hex)
    return Entry(
        entry_id=entry_id,
        partition=partition,
        query=query or f"question {entry_id}",
        payload=kw.pop("payload", b'{"answer": 42}\x00\xff'),
        metadata=kw.pop("metadata", {"status": 200}),
        created_at=time.time(),
        **kw,
    )


async def _stored(response_store: Any, entry: Entry, ttl: int | None = None) -> Entry:
    """Store ``entry``; return it as the store reads it back (what a caller compares)."""
    await response_store.set(entry, ttl)
    read: Entry | None = await response_store.get(entry.entry_id)
    assert read is not None
    return read


async def _stored_again(response_store: Any, entry: Entry) -> Entry:
    """A new answer stored under ``entry``'s id, as a refresh of the same request does."""
    newer = _entry(entry_id=entry.entry_id, query=entry.query, payload=b"newer")
    await response_store.set(newer, None)
    return newer


async def _aliases_go_with(response_store: Any, remove: Callable[[Entry], Awaitable[bool]]) -> None:
    """``remove`` (a delete) of an entry with aliases takes them along, for good."""
    e = _entry()
    await response_store.set(e, None)
    await response_store.add_alias("p", "first paraphrase", e)
    await response_store.add_alias("p", "second paraphrase", e)
    assert await remove(e) is True
    for text in ("first paraphrase", "second paraphrase"):
        assert await response_store.get_exact("p", text) is None
        assert await response_store.get_exact_entry("p", text) is None
    # The same id stored again has no aliases left over.
    await response_store.set(e, None)
    assert await response_store.get_exact("p", "first paraphrase") is None


class ResponseStoreContract:
    """Fixture ``response_store``: an empty response store."""

    async def test_round_trip(self, response_store: Any) -> None:
        e = _entry(metadata={"status": 200, "headers": [["content-type", "application/json"]]})
        await response_store.set(e, None)
        got = await response_store.get(e.entry_id)
        assert got == e
        assert await response_store.get_exact("p", e.query) == e.entry_id
        assert await response_store.get_exact("other", e.query) is None

    async def test_get_many_keeps_order_and_gaps(self, response_store: Any) -> None:
        a, b = _entry(), _entry()
        await response_store.set(a, None)
        await response_store.set(b, None)
        got = await response_store.get_many([b.entry_id, "missing", a.entry_id])
        assert [g.entry_id if g else None for g in got] == [b.entry_id, None, a.entry_id]

    async def test_ttl_expiry(self, response_store: Any) -> None:
        e = _entry(expires_at=time.time() + 1)
        await response_store.set(e, 1)
        assert await response_store.get(e.entry_id) is not None
        deadline = time.monotonic() + 5
        while await response_store.get(e.entry_id) is not None:
            assert time.monotonic() < deadline, "entry outlived its TTL"
            await asyncio.sleep(0.1)
        assert await response_store.get_exact("p", e.query) is None

    async def test_delete(self, response_store: Any) -> None:
        e = _entry()
        await response_store.set(e, None)
        assert await response_store.delete(e.entry_id) is True
        assert await response_store.get(e.entry_id) is None
        assert await response_store.get_exact("p", e.query) is None
        assert await response_store.delete(e.entry_id) is False

    async def test_flush_partition(self, response_store: Any) -> None:
        a, b = _entry("p1"), _entry("p2")
        await response_store.set(a, None)
        await response_store.set(b, None)
        assert await response_store.flush("p1") == 1
        assert await response_store.get(a.entry_id) is None
        assert await response_store.get(b.entry_id) is not None
        await response_store.flush()
        assert await response_store.count() == 0

    async def test_large_binary_payload(self, response_store: Any) -> None:
        payload = bytes(range(256)) * 4096
        e = _entry(payload=payload, query="x" * 20_000)
        await response_store.set(e, None)
        got = await response_store.get(e.entry_id)
        assert got is not None and got.payload == payload
        assert await response_store.get_exact("p", "x" * 20_000) == e.entry_id

    async def test_partitions_where(self, response_store: Any) -> None:
        _skip_unless(response_store, PartitionIndex, "keeps no partition index")
        alice = credential_tag("Bearer sk-alice")
        await response_store.set(
            _entry("p1", metadata={"model": "m1", "path": "/a", "credential": [alice]}), None
        )
        await response_store.set(_entry("p1", metadata={"model": "m1", "path": "/a"}), None)
        await response_store.set(_entry("p2", metadata={"model": "m1", "path": "/b"}), None)
        tenant = {"model": "m2", "path": "/a", "tenant": [tenant_tag("acme")]}
        await response_store.set(_entry("p3", metadata=tenant, expires_at=time.time() + 60), 60)
        where = response_store.partitions_where
        assert sorted(await where([("model", "m1")])) == ["p1", "p2"]
        assert await where([("model", "m1"), ("path", "/a")]) == ["p1"]
        assert await where([("credential", credential_tag("sk-alice"))]) == ["p1"]
        assert await where([("tenant", tenant_tag("acme"))]) == ["p3"]
        assert await where([("model", "m2"), ("path", "/b")]) == []
        assert await where([("model", "m3")]) == []
        await response_store.flush()
        assert await where([("model", "m1")]) == []

    async def test_ping(self, response_store: Any) -> None:
        await response_store.ping()

    # -- optional: aliases (ExactAliases) ----------------------------------------

    @staticmethod
    def _aliases(response_store: Any) -> None:
        _skip_unless(response_store, ExactAliases, "keeps no aliases")

    async def test_get_exact_entry(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry()
        await response_store.set(e, None)
        assert await response_store.get_exact_entry("p", e.query) == e
        assert await response_store.get_exact_entry("other", e.query) is None
        assert await response_store.get_exact_entry("p", "never stored") is None

    async def test_alias_is_an_exact_key_of_the_entry(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry(query="how do I reset my password")
        await response_store.set(e, None)
        assert await response_store.add_alias("p", "how can I reset my password", e) is True
        assert await response_store.get_exact("p", "how can I reset my password") == e.entry_id
        assert await response_store.get_exact_entry("p", "how can I reset my password") == e
        assert await response_store.count() == 1  # an alias is no entry

    async def test_alias_never_crosses_partitions(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry("p1", query="reset my password")
        await response_store.set(e, None)
        assert await response_store.add_alias("p2", "reset the password", e) is False
        assert await response_store.get_exact_entry("p2", "reset the password") is None
        assert await response_store.add_alias("p1", "reset the password", e) is True
        assert await response_store.get_exact_entry("p2", "reset the password") is None
        assert await response_store.get_exact("p2", "reset the password") is None

    async def test_alias_never_hides_an_entry(self, response_store: Any) -> None:
        self._aliases(response_store)
        a = _entry(query="what is the capital of France")
        b = _entry(query="capital of France?")
        await response_store.set(a, None)
        await response_store.set(b, None)
        assert await response_store.add_alias("p", "capital of France?", a) is False
        assert await response_store.get_exact("p", "capital of France?") == b.entry_id
        # A text that later gets an entry of its own: the entry wins.
        assert await response_store.add_alias("p", "France's capital", a) is True
        c = _entry(query="France's capital")
        await response_store.set(c, None)
        assert await response_store.get_exact("p", "France's capital") == c.entry_id
        await response_store.delete(a.entry_id)
        assert await response_store.get_exact("p", "France's capital") == c.entry_id

    async def test_alias_expires_with_its_entry(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry(expires_at=time.time() + 1)
        await response_store.set(e, 1)
        assert await response_store.add_alias("p", "a paraphrase", e) is True
        assert await response_store.get_exact_entry("p", "a paraphrase") == e
        deadline = time.monotonic() + 5
        while await response_store.get(e.entry_id) is not None:
            assert time.monotonic() < deadline, "entry outlived its TTL"
            await asyncio.sleep(0.1)
        assert await response_store.get_exact_entry("p", "a paraphrase") is None
        assert await response_store.get_exact("p", "a paraphrase") is None

    async def test_alias_of_a_missing_entry_is_not_stored(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry()
        assert await response_store.add_alias("p", "a paraphrase", e) is False
        assert await response_store.get_exact("p", "a paraphrase") is None
        gone = _entry(expires_at=time.time() - 1)
        assert await response_store.add_alias("p", "another paraphrase", gone) is False

    async def test_delete_removes_aliases(self, response_store: Any) -> None:
        self._aliases(response_store)
        await _aliases_go_with(response_store, lambda e: response_store.delete(e.entry_id))

    async def test_replacing_an_entry_drops_its_aliases(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry()
        await response_store.set(e, None)
        await response_store.add_alias("p", "a paraphrase", e)
        newer = await _stored_again(response_store, e)
        assert await response_store.get_exact("p", "a paraphrase") is None
        assert await response_store.get_exact_entry("p", e.query) == newer

    async def test_aliases_per_entry_are_bounded(self, response_store: Any) -> None:
        self._aliases(response_store)
        e = _entry()
        await response_store.set(e, None)
        added = [await response_store.add_alias("p", f"paraphrase {i}", e) for i in range(200)]
        assert added[0] is True and added[-1] is False
        kept = added.index(False)
        assert 8 <= kept < 200 and not any(added[kept:])
        assert await response_store.add_alias("p", "paraphrase 0", e) is True  # already there
        assert await response_store.get_exact("p", f"paraphrase {kept}") is None

    async def test_flush_removes_aliases(self, response_store: Any) -> None:
        self._aliases(response_store)
        a, b = _entry("p1"), _entry("p2")
        await response_store.set(a, None)
        await response_store.set(b, None)
        await response_store.add_alias("p1", "alias of a", a)
        await response_store.add_alias("p2", "alias of b", b)
        assert await response_store.flush("p1") == 1
        assert await response_store.get_exact("p1", "alias of a") is None
        assert await response_store.get_exact_entry("p2", "alias of b") == b
        await response_store.set(a, None)  # the same id again: no alias comes back
        assert await response_store.get_exact("p1", "alias of a") is None
        assert await response_store.flush() == 2
        assert await response_store.get_exact("p2", "alias of b") is None
        assert await response_store.count() == 0

    # -- optional: conditional metadata writes (ConditionalMetadata) -------------

    @staticmethod
    def _conditional(response_store: Any) -> None:
        _skip_unless(response_store, ConditionalMetadata, "has no conditional metadata write")

    async def test_replace_metadata_of_the_version_read(self, response_store: Any) -> None:
        self._conditional(response_store)
        e = _entry(expires_at=time.time() + 600)
        read = await _stored(response_store, e, 600)
        assert await response_store.replace_metadata(read, {"status": 200, "seen": [1]})
        got = await response_store.get(e.entry_id)
        assert got is not None and got.metadata == {"status": 200, "seen": [1]}
        assert (got.payload, got.created_at, got.expires_at) == (
            e.payload,
            e.created_at,
            e.expires_at,
        )
        assert await response_store.get_exact("p", e.query) == e.entry_id
        assert await response_store.count() == 1

    async def test_replace_metadata_of_an_older_version_is_refused(
        self, response_store: Any
    ) -> None:
        self._conditional(response_store)
        e = _entry()
        read = await _stored(response_store, e)
        assert await response_store.replace_metadata(read, {"n": 1}) is True
        # ``read`` is now out of date: a second writer that read it must read again.
        assert await response_store.replace_metadata(read, {"n": 2}) is False
        fresh = await response_store.get(e.entry_id)
        assert fresh is not None and fresh.metadata == {"n": 1}
        assert await response_store.replace_metadata(fresh, {"n": 2}) is True
        assert (await response_store.get(e.entry_id)).metadata == {"n": 2}

    async def test_replace_metadata_never_recreates_a_deleted_entry(
        self, response_store: Any
    ) -> None:
        self._conditional(response_store)
        e = _entry()
        read = await _stored(response_store, e)
        assert await response_store.delete(e.entry_id)
        assert await response_store.replace_metadata(read, {"n": 1}) is False
        assert await response_store.get(e.entry_id) is None
        assert await response_store.get_exact("p", e.query) is None
        await response_store.set(e, None)
        await response_store.flush("p")
        assert await response_store.replace_metadata(read, {"n": 1}) is False
        assert await response_store.count() == 0
        gone = _entry(expires_at=time.time() - 1)
        await response_store.set(gone, None)
        assert await response_store.replace_metadata(gone, {"n": 1}) is False
        assert await response_store.get(gone.entry_id) is None

    async def test_replace_metadata_keeps_a_new_answer(self, response_store: Any) -> None:
        self._conditional(response_store)
        e = _entry()
        read = await _stored(response_store, e)
        newer = await _stored_again(response_store, e)
        assert await response_store.replace_metadata(read, {"n": 1}) is False
        assert await response_store.get(e.entry_id) == newer

    async def test_replace_metadata_keeps_the_aliases(self, response_store: Any) -> None:
        self._conditional(response_store)
        self._aliases(response_store)
        e = _entry()
        await response_store.set(e, None)
        assert await response_store.add_alias("p", "a paraphrase", e) is True
        assert await response_store.replace_metadata(e, {"n": 1}) is True
        got = await response_store.get_exact_entry("p", "a paraphrase")
        assert got is not None and got.entry_id == e.entry_id and got.metadata == {"n": 1}

    async def test_replace_metadata_indexes_new_partition_tags(self, response_store: Any) -> None:
        self._conditional(response_store)
        _skip_unless(response_store, PartitionIndex, "keeps no partition index")
        e = _entry("p1", metadata={"model": "m1"}, expires_at=time.time() + 600)
        await response_store.set(e, 600)
        tenant = tenant_tag("acme")
        assert await response_store.replace_metadata(e, {"model": "m1", "tenant": [tenant]})
        assert await response_store.partitions_where([("tenant", tenant)]) == ["p1"]
        assert await response_store.partitions_where([("model", "m1")]) == ["p1"]

    # -- optional: conditional deletes (ConditionalDelete) -----------------------

    @staticmethod
    def _conditional_delete(response_store: Any) -> None:
        _skip_unless(response_store, ConditionalDelete, "has no conditional delete")

    async def test_delete_if_current_of_the_version_read(self, response_store: Any) -> None:
        self._conditional_delete(response_store)
        e = _entry(expires_at=time.time() + 600)
        read = await _stored(response_store, e, 600)
        assert await response_store.delete_if_current(read) is True
        assert await response_store.get(e.entry_id) is None
        assert await response_store.get_exact("p", e.query) is None
        assert await response_store.count() == 0
        assert await response_store.delete_if_current(read) is False  # already gone
        assert await response_store.get(e.entry_id) is None

    async def test_delete_if_current_keeps_a_new_answer(self, response_store: Any) -> None:
        self._conditional_delete(response_store)
        e = _entry()
        read = await _stored(response_store, e)
        newer = await _stored_again(response_store, e)
        assert await response_store.delete_if_current(read) is False
        assert await response_store.get(e.entry_id) == newer
        assert await response_store.get_exact("p", e.query) == e.entry_id
        assert await response_store.delete_if_current(newer) is True
        assert await response_store.get(e.entry_id) is None

    async def test_delete_if_current_of_changed_metadata_is_refused(
        self, response_store: Any
    ) -> None:
        self._conditional_delete(response_store)
        e = _entry(metadata={"status": 200})
        read = await _stored(response_store, e)
        # The same answer with new metadata (as audits write): the caller reads it again.
        changed = replace(e, metadata={"status": 200, "n": 1})
        await response_store.set(changed, None)
        assert await response_store.delete_if_current(read) is False
        fresh = await response_store.get(e.entry_id)
        assert fresh == changed
        assert await response_store.delete_if_current(fresh) is True
        assert await response_store.count() == 0

    async def test_delete_if_current_of_a_missing_or_expired_entry(
        self, response_store: Any
    ) -> None:
        self._conditional_delete(response_store)
        never = _entry()
        assert await response_store.delete_if_current(never) is False
        assert await response_store.get(never.entry_id) is None
        e = _entry()
        read = await _stored(response_store, e)
        await response_store.flush("p")
        assert await response_store.delete_if_current(read) is False
        assert await response_store.count() == 0
        gone = _entry(expires_at=time.time() - 1)
        await response_store.set(gone, None)
        assert await response_store.delete_if_current(gone) is False
        assert await response_store.get(gone.entry_id) is None

    async def test_delete_if_current_removes_aliases(self, response_store: Any) -> None:
        self._conditional_delete(response_store)
        self._aliases(response_store)
        await _aliases_go_with(response_store, response_store.delete_if_current)

    async def test_a_refused_delete_if_current_keeps_the_aliases(self, response_store: Any) -> None:
        self._conditional_delete(response_store)
        self._aliases(response_store)
        e = _entry()
        read = await _stored(response_store, e)
        newer = await _stored_again(response_store, e)
        assert await response_store.add_alias("p", "a paraphrase", newer) is True
        assert await response_store.delete_if_current(read) is False
        assert await response_store.get_exact_entry("p", "a paraphrase") == newer
        assert await response_store.get_exact_entry("p", e.query) == newer
