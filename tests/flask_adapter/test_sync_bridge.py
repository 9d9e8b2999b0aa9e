"""semcache.sync: the loop thread every sync adapter (Flask, Django under WSGI) shares."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading

import pytest

from semcache import sync
from semcache.sync import LoopThread
from tests.support.scenarios.harness import build_cache, settings_for_tests

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


async def where() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    return asyncio.get_running_loop(), threading.current_thread()


def test_one_long_lived_loop_for_every_thread_and_call() -> None:
    seen: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            found = sync.run(where(), 10)
            with lock:
                seen.append(found)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(seen) == 20 and len(set(seen)) == 1
    loop, thread = seen[0]
    assert loop is sync.loop_thread().loop and thread.daemon and thread.name == "semcache-loop"


def test_timeout_cancels_the_coroutine() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        sync.run(forever(), 0.05)
    assert cancelled.wait(10)


def test_exceptions_reach_the_caller() -> None:
    async def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        sync.run(boom(), 10)


def test_run_on_the_loop_thread_is_refused() -> None:
    async def nested() -> None:
        sync.run(where(), 1)

    with pytest.raises(RuntimeError, match="await instead"):
        sync.run(nested(), 10)


def test_coroutines_do_not_inherit_the_callers_context_unless_given() -> None:
    async def read() -> str:
        return REQUEST_ID.get()

    token = REQUEST_ID.set("req-1")
    try:
        assert sync.run(read(), 10) == ""
        thread = sync.loop_thread()
        assert thread.run(read(), 10, context=contextvars.copy_context()) == "req-1"
    finally:
        REQUEST_ID.reset(token)


def test_spawn_drain_and_stop_of_a_private_loop_thread() -> None:
    thread = LoopThread("semcache-test-loop")
    done = threading.Event()

    async def write() -> None:
        await asyncio.sleep(0.01)
        done.set()

    thread.spawn(write())
    assert thread.drain(10) and done.is_set()
    first = thread.loop
    thread.stop()
    assert first.is_closed() or not first.is_running()
    assert thread.run(where(), 10)[1].name == "semcache-test-loop"  # restarted on use
    thread.stop()


def test_run_async_from_another_loop() -> None:
    async def main() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        return await sync.loop_thread().run_async(where())

    loop, _ = asyncio.run(main())
    assert loop is sync.loop_thread().loop


def test_shared_cache_is_one_per_settings() -> None:
    settings = settings_for_tests(ttl=123)
    assert sync.shared_cache(settings) is sync.shared_cache(settings_for_tests(ttl=123))
    assert sync.shared_cache(settings) is not sync.shared_cache(settings_for_tests(ttl=124))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_fresh_loop_and_cache() -> None:
    parent_loop, parent_thread = sync.run(where(), 10)
    cache = build_cache()
    sync.run(cache.store("What is the capital of France?", b"paris"), 10)
    shared = sync.shared_cache(settings_for_tests(ttl=321))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup
        code = 1
        try:
            loop, thread = sync.run(where(), 10)
            fresh = loop is not parent_loop and thread is not parent_thread
            fresh = fresh and sync.shared_cache(settings_for_tests(ttl=321)) is not shared
            own = build_cache()
            sync.run(own.store("What is the capital of Spain?", b"madrid"), 10)
            hit = sync.run(own.lookup("What is the capital of Spain?"), 10)
            code = 0 if fresh and hit is not None and hit.payload == b"madrid" else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    try:
        status = os.read(read, 1)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert status == bytes([0])
    # The parent's loop and cache are untouched by the child.
    assert sync.run(where(), 10) == (parent_loop, parent_thread)
    hit = sync.run(cache.lookup("What is the capital of France?"), 10)
    assert hit is not None and hit.payload == b"paris"
    sync.run(cache.close(), 10)
