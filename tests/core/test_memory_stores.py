import asyncio
import sqlite3
import time

import numpy as np
import pytest

from semcache.embedder import normalize_rows
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing.contracts import ResponseStoreContract, VectorStoreContract
from semcache.types import Entry


class TestMemoryVectorStoreContract(VectorStoreContract):
    @pytest.fixture
    async def vector_store(self):
        store = MemoryVectorStore(self.dimension)
        yield store
        await store.aclose()


class TestMemoryVectorStorePersistedContract(VectorStoreContract):
    @pytest.fixture
    async def vector_store(self, tmp_path):
        store = MemoryVectorStore(self.dimension, path=tmp_path / "v.sqlite3")
        yield store
        await store.aclose()


class TestMemoryResponseStoreContract(ResponseStoreContract):
    @pytest.fixture
    async def response_store(self):
        store = MemoryResponseStore()
        yield store
        await store.aclose()


def _vectors(n, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    return normalize_rows(rng.normal(size=(n, dim)).astype(np.float32))


async def test_vector_store_evicts_least_recently_used():
    store = MemoryVectorStore(16, max_entries=3)
    v = _vectors(4)
    for i in range(3):
        await store.add(f"e{i}", "p", v[i], None)
    await store.search("p", v[0], 1, 0.99)  # touch e0: e1 is now the oldest
    await store.add("e3", "p", v[3], None)
    assert await store.count() == 3
    assert await store.search("p", v[1], 1, 0.99) == []
    assert [m.entry_id for m in await store.search("p", v[0], 1, 0.99)] == ["e0"]


async def test_response_store_evicts_least_recently_used():
    store = MemoryResponseStore(max_entries=2)
    for i in range(2):
        await store.set(Entry(f"e{i}", "p", f"q{i}", b"x"), None)
    await store.get("e0")
    await store.set(Entry("e2", "p", "q2", b"x"), None)
    assert await store.get("e1") is None
    assert await store.get("e0") is not None
    assert await store.get_exact("p", "q1") is None


async def test_stores_survive_a_restart(tmp_path):
    v = _vectors(2)
    vs = MemoryVectorStore(16, path=tmp_path / "v.sqlite3")
    rs = MemoryResponseStore(path=tmp_path / "r.sqlite3")
    expires_at = time.time() + 0.2
    await vs.add("keep", "p", v[0], None)
    # The expired vector is the query's own: a search would return it were it reloaded.
    await vs.add("gone", "p", v[0], expires_at)
    await rs.set(Entry("keep", "p", "question", b"\x00answer", {"status": 200}), None)
    await rs.set(Entry("gone", "p", "other question", b"old", {}, expires_at=expires_at), None)
    await vs.aclose()
    await rs.aclose()
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.01)  # past the expiry

    vs2 = MemoryVectorStore(16, path=tmp_path / "v.sqlite3")
    rs2 = MemoryResponseStore(path=tmp_path / "r.sqlite3")
    # Expired rows are not loaded (nor counted) and are deleted from the files.
    assert await vs2.count() == 1 and await rs2.count() == 1
    assert [m.entry_id for m in await vs2.search("p", v[0], 2, 0.9)] == ["keep"]
    got = await rs2.get("keep")
    assert got is not None and got.payload == b"\x00answer" and got.metadata == {"status": 200}
    assert await rs2.get("gone") is None
    await vs2.aclose()
    await rs2.aclose()
    assert _file_keys(tmp_path / "v.sqlite3") == ["keep"]
    assert _file_keys(tmp_path / "r.sqlite3") == ["keep"]


def _file_keys(path):
    """The keys stored in an embedded store's file, read with sqlite3 itself."""
    db = sqlite3.connect(path)
    try:
        return sorted(key for (key,) in db.execute("SELECT key FROM entries"))
    finally:
        db.close()


async def test_large_partition_switches_to_hnsw_and_keeps_recall():
    dim = 32
    store = MemoryVectorStore(dim, ann_threshold=2000)
    data = _vectors(3000, dim, seed=1)
    for i, row in enumerate(data):
        await store.add(f"e{i}", "big", row, None)
    await store.add("other", "small", data[0], None)
    deadline = time.monotonic() + 60
    part = store._parts["big"]
    while part.ann is None or part.ann_building:  # built in a worker thread
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    found = 0
    for i in range(0, 3000, 30):
        matches = await store.search("big", data[i], 1, 0.0)
        found += matches[0].entry_id == f"e{i}"
    assert found >= 95
    # deletes reach the index, and partitions stay apart
    await store.delete(["e0"])
    assert all(m.entry_id != "e0" for m in await store.search("big", data[0], 3, 0.0))
    assert [m.entry_id for m in await store.search("small", data[0], 3, 0.0)] == ["other"]
    await store.aclose()


async def test_reloaded_large_partition_builds_its_index_once_loaded(tmp_path):
    dim = 32
    data = _vectors(3000, dim, seed=2)
    first = MemoryVectorStore(dim, ann_threshold=1000, path=tmp_path / "v.sqlite3")
    for i, row in enumerate(data):
        await first.add(f"e{i}", "big", row, None)
    await first.aclose()

    store = MemoryVectorStore(dim, ann_threshold=1000, path=tmp_path / "v.sqlite3")
    part = store._parts["big"]
    assert part.ann is None and not part.ann_building  # nothing queued while loading
    assert [m.entry_id for m in await store.search("big", data[7], 1, 0.0)] == ["e7"]
    assert part.ann_building  # the first search started one build over every row
    for i in range(3000, 3600):  # entries arriving during the build are caught up
        await store.add(f"e{i}", "big", _vectors(1, dim, seed=i)[0], None)
    deadline = time.monotonic() + 60
    while part.ann is None or part.ann_building:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert part.ann.get_current_count() == 3600
    assert [m.entry_id for m in await store.search("big", data[42], 1, 0.0)] == ["e42"]
    await store.aclose()


class _ReopenedResponseStore:
    """A persisted MemoryResponseStore closed and reopened from its file before every
    call: each step of the contract sees only what the file kept."""

    def __init__(self, path):
        self.path = path
        self.store = MemoryResponseStore(path=path)
        self.reopens = 0

    async def _reopened(self):
        await self.store.aclose()
        self.store = MemoryResponseStore(path=self.path)
        self.reopens += 1
        return self.store

    async def set(self, entry, ttl):
        return await (await self._reopened()).set(entry, ttl)

    async def get(self, entry_id):
        return await (await self._reopened()).get(entry_id)

    async def get_many(self, entry_ids):
        return await (await self._reopened()).get_many(entry_ids)

    async def get_exact(self, partition, query):
        return await (await self._reopened()).get_exact(partition, query)

    async def replace_metadata(self, entry, metadata):
        return await (await self._reopened()).replace_metadata(entry, metadata)

    async def delete(self, entry_id):
        return await (await self._reopened()).delete(entry_id)

    async def delete_if_current(self, entry):
        return await (await self._reopened()).delete_if_current(entry)

    async def flush(self, partition=None):
        return await (await self._reopened()).flush(partition)

    async def partitions_where(self, tags):
        return await (await self._reopened()).partitions_where(tags)

    async def count(self):
        return await (await self._reopened()).count()

    async def ping(self):
        return await (await self._reopened()).ping()

    async def aclose(self):
        await self.store.aclose()


class TestMemoryResponseStoreReopenedContract(ResponseStoreContract):
    @pytest.fixture
    async def response_store(self, tmp_path):
        store = _ReopenedResponseStore(tmp_path / "r.sqlite3")
        yield store
        await store.aclose()


async def test_deletes_flushes_and_evictions_stay_done_after_a_restart(tmp_path):
    v = _vectors(6)
    vpath, rpath = tmp_path / "v.sqlite3", tmp_path / "r.sqlite3"
    vs = MemoryVectorStore(16, max_entries=3, path=vpath)
    rs = MemoryResponseStore(max_entries=3, path=rpath)
    for i in range(4):  # e3 evicts e0 from both stores
        await vs.add(f"e{i}", "p", v[i], None)
        await rs.set(Entry(f"e{i}", "p", f"question {i}", b"x"), None)
    await vs.delete(["e1"])
    assert await rs.delete("e1")
    await vs.add("q0", "q", v[4], None)  # then the partition is flushed
    await rs.set(Entry("q0", "q", "question q", b"x"), None)
    await vs.flush("q")
    assert await rs.flush("q") == 1
    await vs.aclose()
    await rs.aclose()

    vs = MemoryVectorStore(16, max_entries=3, path=vpath)
    rs = MemoryResponseStore(max_entries=3, path=rpath)
    assert await vs.count() == 2 and await rs.count() == 2
    for i in (2, 3):
        assert [m.entry_id for m in await vs.search("p", v[i], 1, 0.99)] == [f"e{i}"]
    for i in (0, 1):
        assert await vs.search("p", v[i], 1, 0.99) == []
    assert await vs.search("q", v[4], 1, 0.99) == []
    assert [await rs.get(f"e{i}") is not None for i in range(4)] == [False, False, True, True]
    assert await rs.get("q0") is None and await rs.get_exact("q", "question q") is None
    assert await rs.get_exact("p", "question 1") is None
    # A flush of everything, then one store: only that one is in the files.
    await vs.flush()
    await rs.flush()
    await vs.add("after", "p", v[5], None)
    await rs.set(Entry("after", "p", "question after", b"x"), None)
    await vs.aclose()
    await rs.aclose()
    assert _file_keys(vpath) == ["after"] and _file_keys(rpath) == ["after"]
    vs = MemoryVectorStore(16, max_entries=3, path=vpath)
    rs = MemoryResponseStore(max_entries=3, path=rpath)
    assert await vs.count() == 1 and await rs.count() == 1
    assert [m.entry_id for m in await vs.search("p", v[5], 1, 0.99)] == ["after"]
    await vs.aclose()
    await rs.aclose()
