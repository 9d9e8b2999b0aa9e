"""The proxy's embedded store across a `kill -9`, a SIGTERM and a second process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import httpx

from tests.support.polling import wait_until
from tests.support.ports import free_port

from .processes import start_proxy, stop_proxy

CHAT = "/v1/chat/completions"
# The journal's write-behind interval (0.5 s) plus the time a background store takes to
# reach the store after its response was sent.
OLDER_THAN = 1.0
ADMIN = {"Authorization": "Bearer t"}


def _env(folder) -> dict[str, str]:
    return {
        **os.environ,
        "SEMANTIC_CACHE_DATA_PATH": str(folder),
        "SEMANTIC_CACHE_EMBEDDER_TYPE": "testing-hash",
        "SEMANTIC_CACHE_THRESHOLD": "0.8",
        "SEMANTIC_CACHE_VERIFIER": "none",
        "SEMANTIC_CACHE_ADMIN_TOKEN": "t",
    }


def _body(i: int) -> dict:
    # Unrelated words per i: with texts alike but for their numbers, the hashing embedder
    # scores some pairs past 0.8 (the first at i=91), and a fast server gets that far.
    h = hashlib.sha256(str(i).encode()).hexdigest()
    text = f"question {h[:8]} {h[8:16]} {h[16:24]} {h[24:32]}"
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def _stored(url: str) -> int:
    return httpx.get(url + "/_semcache/admin/stats", headers=ADMIN).json().get("vectors") or 0


def test_kill_9_during_stores_keeps_everything_older_than_the_interval(upstream, tmp_path):
    proc, url = start_proxy(upstream, env=_env(tmp_path), ready_within=60)
    answered: list[tuple[int, float]] = []
    try:
        with httpx.Client() as client:
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < 3.0:
                response = client.post(url + CHAT, json=_body(i))
                assert response.headers["x-semcache"] == "miss"
                answered.append((i, time.monotonic()))
                i += 1
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)  # stores still streaming in
        proc.wait(10)
    finally:
        stop_proxy(proc)
    old = [i for i, at in answered if killed_at - at > OLDER_THAN]
    assert len(old) >= 10, answered

    proc, url = start_proxy(upstream, env=_env(tmp_path), ready_within=60)
    try:
        assert _stored(url) >= len(old)
        with httpx.Client() as client:
            missing = [
                i
                for i in old
                if client.post(url + CHAT, json=_body(i)).headers["x-semcache"] != "hit"
            ]
        assert missing == [], f"{len(missing)} of {len(old)} lost: {missing[:10]}"
    finally:
        stop_proxy(proc)


def test_sigterm_writes_every_store_before_exiting(upstream, tmp_path):
    proc, url = start_proxy(upstream, env=_env(tmp_path), ready_within=60)
    try:
        with httpx.Client() as client:
            for i in range(30):
                assert client.post(url + CHAT, json=_body(i)).headers["x-semcache"] == "miss"
        wait_until(lambda: _stored(url) == 30, timeout=10, what="30 stores")
        proc.terminate()  # at once: the last writes are still queued
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises it after shutdown
    finally:
        stop_proxy(proc)
    proc, url = start_proxy(upstream, env=_env(tmp_path), ready_within=60)
    try:
        assert _stored(url) == 30
        with httpx.Client() as client:
            for i in range(30):
                assert client.post(url + CHAT, json=_body(i)).headers["x-semcache"] == "hit", i
    finally:
        stop_proxy(proc)


def test_a_second_proxy_on_the_data_folder_refuses_it(upstream, tmp_path):
    first, _ = start_proxy(upstream, env=_env(tmp_path), ready_within=60)
    try:
        port = free_port()
        args = [sys.executable, "-m", "semcache_proxy.cli", "--upstream", upstream]
        args += ["--port", str(port), "--log-level", "warning"]
        second = subprocess.Popen(
            args,
            env=_env(tmp_path),
            stderr=subprocess.PIPE,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def answered() -> bool:
                try:
                    return httpx.get(url + "/readyz").status_code == 503
                except httpx.TransportError:
                    return False

            wait_until(answered, timeout=60, what="the second proxy answered /readyz")
            time.sleep(0.5)  # the store was refused by now (the readiness stays 503)
            assert httpx.get(url + "/readyz").status_code == 503
        finally:
            second.terminate()
            _, err = second.communicate(timeout=20)
        text = err.decode()
        assert f"the data folder {tmp_path} is in use by process {first.pid}" in text, text
    finally:
        stop_proxy(first)
