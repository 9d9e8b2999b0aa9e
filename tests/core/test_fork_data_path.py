"""A process that forks after its cache opened a data folder (gunicorn ``--preload``,
``multiprocessing`` with fork): the embedded store belongs to the parent. The child is
refused its own store on that folder, never writes the parent's files, and exits at once;
the parent keeps writing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from semcache.types import decode_entry

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from semcache import SemanticCache, Settings
    from semcache.testing import HashingTestEmbedder

    folder = sys.argv[1]

    def cache():
        settings = Settings.from_env({}, data_path=folder)
        return SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None)

    loop = asyncio.new_event_loop()
    parent = cache()
    loop.run_until_complete(parent.start())
    loop.run_until_complete(parent.store("parent question one", b"p1"))
    loop.run_until_complete(parent.persist())
    loop.run_until_complete(parent.store("parent question two", b"p2"))  # queued at the fork
    read, write = os.pipe()
    forked = time.monotonic()
    pid = os.fork()
    if pid == 0:
        # The parent's event loop shares its epoll instance with this copy: closing the
        # copy (at exit) would unregister the parent's wake-up pipe from it.
        loop.close = lambda: None
        os.close(read)
        said = {}

        async def child():
            own = cache()
            try:
                await own.start()
                said["own"] = "started"
            except Exception as exc:
                said["own"] = f"{type(exc).__name__}: {exc}"
            finally:
                await own.close()

        asyncio.run(child())
        os.write(write, json.dumps(said).encode())
        os.close(write)
        sys.exit(0)  # a normal exit: the atexit hooks run
    os.close(write)
    said = json.loads(os.read(read, 65536) or b"{}")
    _, status = os.waitpid(pid, 0)
    said["child_status"] = status
    said["child_seconds"] = time.monotonic() - forked
    said["parent_pid"] = os.getpid()
    loop.run_until_complete(parent.store("parent question three", b"p3"))
    loop.run_until_complete(parent.close())
    print(json.dumps(said))
    """
)


def _questions(folder: Path) -> list[str]:
    (path,) = folder.glob("semcache-responses-*.sqlite3")
    db = sqlite3.connect(path)
    try:
        return sorted(
            decode_entry(blob).query for (blob,) in db.execute("SELECT blob FROM entries")
        )
    finally:
        db.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_leaves_the_parents_data_folder_alone(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    script = tmp_path / "fork.py"
    script.write_text(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # the forked child too is killed on a hang
    )
    try:
        stdout, stderr = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the parent or its forked child hung")
    run = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert run.returncode == 0, run.stderr[-3000:]
    said = json.loads(run.stdout.strip().splitlines()[-1])
    # The child's own store on the folder is refused, naming the parent.
    assert said["own"].startswith("StoreSetupError"), said
    assert f"process {said['parent_pid']}" in said["own"], said
    # It exits at once and cleanly: it does not wait for writes that belong to the
    # parent's writer thread (a thread a fork does not copy).
    assert said["child_status"] == 0, said
    assert said["child_seconds"] < 5, said
    assert "could not be written before exit" not in run.stderr, run.stderr[-3000:]
    # Only the parent's answers are in the files, every one of them.
    assert _questions(folder) == [
        "parent question one",
        "parent question three",
        "parent question two",
    ]
