"""The embedded stores' on-disk copy: no crash and no lost acknowledged write on close and
reopen, a corrupt file at start-up is moved aside, one process per file, failed writes
are retried and reported."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from semcache import SemanticCache, Settings
from semcache.errors import StoreSetupError
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.stores._journal import Journal
from semcache.testing import HashingTestEmbedder

ROUNDS = 20
PER_ROUND = 60  # awaited stores per round
IN_FLIGHT = 40  # stores still running when the block is left


class _SlowEmbedder(HashingTestEmbedder):
    """Embeds after a short wait, so stores are still running when a close comes."""

    async def embed(self, texts):
        await asyncio.sleep(random.uniform(0, 0.004))
        return await super().embed(texts)


def _cache(folder, embedder=None) -> SemanticCache:
    settings = Settings.from_env({}, data_path=str(folder), batch_max_size=1)
    embedder = embedder or HashingTestEmbedder()
    return SemanticCache(settings, embedder=embedder, verifier=None, threshold=0.8)


def _question(round_: int, i: int) -> str:
    return f"question {i} of round {round_} about topic {round_ * 1000 + i}"


async def test_store_close_reopen_count_rounds(tmp_path):
    acknowledged: set[str] = set()
    refused = 0
    for round_ in range(ROUNDS):
        async with _cache(tmp_path, _SlowEmbedder()) as cache:
            # Everything acknowledged before is back.
            assert await cache.response_store.count() == len(acknowledged), round_
            assert await cache.vector_store.count() == len(acknowledged), round_
            for i in range(PER_ROUND):
                if await cache.store(_question(round_, i), b"x", partition="p"):
                    acknowledged.add(_question(round_, i))
            # Stores still in flight when the block is left: each is either acknowledged
            # (and then must come back) or refused, never acknowledged and lost.
            tail = [
                asyncio.create_task(cache.store(_question(round_, i), b"y", partition="p"))
                for i in range(PER_ROUND, PER_ROUND + IN_FLIGHT)
            ]
            await asyncio.sleep(0)
        results = await asyncio.gather(*tail)
        for i, entry_id in zip(range(PER_ROUND, PER_ROUND + IN_FLIGHT), results, strict=True):
            if entry_id:
                acknowledged.add(_question(round_, i))
            else:
                refused += 1
    async with _cache(tmp_path) as cache:
        assert await cache.response_store.count() == len(acknowledged)
        assert await cache.vector_store.count() == len(acknowledged)
        for question in sorted(acknowledged)[:: max(1, len(acknowledged) // 50)]:
            hit = await cache.lookup(question, partition="p")
            assert hit is not None and hit.source == "exact", question
    assert len(acknowledged) >= ROUNDS * PER_ROUND
    assert refused or len(acknowledged) == ROUNDS * (PER_ROUND + IN_FLIGHT)


async def test_close_waits_for_the_write_in_flight_and_flushes_race(tmp_path):
    """Flushes, a cancelled close and a second close at once: one writer, no crash."""
    for round_ in range(ROUNDS):
        journal = Journal(tmp_path / "j.sqlite3", interval=0.001)
        for i in range(2000):
            journal.put(f"r{round_}-{i}", "p", b"v" * 64, None)
        flushes = [asyncio.create_task(journal.flush()) for _ in range(3)]
        closing = asyncio.create_task(journal.aclose())
        await asyncio.sleep(0)
        closing.cancel()  # the writer still writes and closes
        await asyncio.gather(*flushes, return_exceptions=True)
        await journal.aclose()
        stats = journal.stats()
        assert stats["write_failures"] == 0 and stats["dropped"] == 0, stats
    reopened = Journal(tmp_path / "j.sqlite3")
    assert len(reopened.rows()) == ROUNDS * 2000
    await reopened.aclose()


async def test_a_failed_write_is_retried_and_reported(tmp_path, monkeypatch, caplog):
    real = Journal._write
    failures = iter([True, True])

    def flaky(self, batch, clear):
        if next(failures, False):
            import sqlite3

            return sqlite3.OperationalError("disk I/O error")
        return real(self, batch, clear)

    monkeypatch.setattr(Journal, "_write", flaky)
    journal = Journal(tmp_path / "j.sqlite3", interval=0.01)
    journal.put("a", "p", b"1", None)
    journal.put("b", "p", b"2", None)
    with caplog.at_level(logging.WARNING, logger="semcache"):
        assert await journal.flush(within=10)
    stats = journal.stats()
    assert stats["write_failures"] == 2 and stats["pending"] == 0 and stats["dropped"] == 0
    assert "disk I/O error" in stats["last_error"]
    assert "could not write" in caplog.text
    await journal.aclose()
    reopened = Journal(tmp_path / "j.sqlite3")
    assert sorted(r[0] for r in reopened.rows()) == ["a", "b"]
    await reopened.aclose()


async def test_a_write_that_never_succeeds_is_reported_as_dropped(tmp_path, monkeypatch, caplog):
    import sqlite3

    monkeypatch.setattr(Journal, "_write", lambda self, b, c: sqlite3.OperationalError("full"))
    journal = Journal(tmp_path / "j.sqlite3", interval=0.01)
    journal.put("a", "p", b"1", None)
    with caplog.at_level(logging.ERROR, logger="semcache"):
        await journal.aclose()
    assert journal.stats()["dropped"] == 1
    assert "could not be written" in caplog.text


async def test_stats_show_the_on_disk_copy(tmp_path):
    async with _cache(tmp_path) as cache:
        await cache.store("what is my balance", b"42", partition="a")
        stats = await cache.stats()
    for name in ("vectors_journal", "entries_journal"):
        assert stats[name]["dropped"] == 0 and stats[name]["write_failures"] == 0, stats


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_a_corrupt_file_is_moved_aside_and_the_cache_starts(tmp_path, damage, caplog):
    async with _cache(tmp_path) as cache:
        for i in range(300):
            await cache.store(_question(0, i) + " " + "z" * 200, b"x" * 500, partition="p")
    files = sorted(tmp_path.glob("*.sqlite3"))
    assert files
    for file in files:
        if damage == "garbage":
            file.write_bytes(os.urandom(5000))
        else:
            data = file.read_bytes()
            file.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="semcache"):
        async with _cache(tmp_path) as cache:
            assert await cache.response_store.count() == 0
            assert await cache.vector_store.count() == 0
            assert await cache.store("a new question", b"new", partition="p")
        async with _cache(tmp_path) as cache:
            assert await cache.lookup("a new question", partition="p") is not None
    assert "moved it to" in caplog.text
    assert len(list(tmp_path.glob("*.corrupt-*"))) == len(files)


async def test_an_unreadable_row_is_skipped(tmp_path):
    path = tmp_path / "r.sqlite3"
    journal = Journal(path)
    journal.put("bad", "p", b"not an entry", None)
    await journal.aclose()
    store = MemoryResponseStore(path=path)
    assert await store.count() == 0
    await store.aclose()
    vectors = MemoryVectorStore(8, path=tmp_path / "v.sqlite3")
    await vectors.aclose()
    journal = Journal(tmp_path / "v.sqlite3")
    journal.put("short", "p", b"abc", None)
    await journal.aclose()
    vectors = MemoryVectorStore(8, path=tmp_path / "v.sqlite3")
    assert await vectors.count() == 0
    await vectors.add("ok", "p", np.ones(8, dtype=np.float32), None)
    await vectors.aclose()


async def test_a_second_store_on_the_same_file_refuses(tmp_path):
    first = Journal(tmp_path / "j.sqlite3")
    with pytest.raises(StoreSetupError, match=str(tmp_path)):
        Journal(tmp_path / "j.sqlite3")
    await first.aclose()
    again = Journal(tmp_path / "j.sqlite3")  # released on close
    await again.aclose()


def test_a_second_process_on_the_data_folder_refuses(tmp_path):
    holder = textwrap.dedent(
        f"""
        import asyncio, sys
        from semcache import SemanticCache, Settings
        from semcache.testing import HashingTestEmbedder

        async def main():
            settings = Settings.from_env({{}}, data_path={str(tmp_path)!r}, batch_max_size=1)
            async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None):
                print("open", flush=True)
                sys.stdin.readline()

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout.readline().strip() == b"open"

        async def second():
            async with _cache(tmp_path):
                pass

        with pytest.raises(StoreSetupError) as caught:
            asyncio.run(second())
        message = str(caught.value)
        assert str(tmp_path) in message and f"process {proc.pid}" in message
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert proc.returncode == 0


def test_sigterm_writes_what_is_queued(tmp_path):
    """A script that leaves SIGTERM at its default still writes its queue when killed."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from semcache import SemanticCache, Settings
        from semcache.testing import HashingTestEmbedder

        async def main():
            settings = Settings.from_env({{}}, data_path={str(tmp_path)!r}, batch_max_size=1)
            cache = SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None)
            await cache.start()
            cache.vector_store._journal.interval = 3600  # nothing written but on exit
            cache.response_store._journal.interval = 3600
            for i in range(100):
                await cache.store(f"question number {{i}}", b"x", partition="p")
            print("stored", flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"stored"
        proc.terminate()
        assert proc.wait(30) == -15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    async def count():
        async with _cache(tmp_path) as cache:
            return await cache.response_store.count(), await cache.vector_store.count()

    assert asyncio.run(count()) == (100, 100)
