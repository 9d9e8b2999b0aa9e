"""The main job: `semcache-proxy --upstream URL` with no other configuration."""

import os
import subprocess
import sys
import time

import httpx

from ..support.servers import free_port


def test_default_proxy_serves_a_paraphrase_from_cache(upstream, fake, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    env["SEMANTIC_CACHE_ADMIN_TOKEN"] = "t"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semcache_proxy.cli",
            "--upstream",
            upstream,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # loads the real all-MiniLM-L6-v2 model
        while True:
            assert proc.poll() is None, "proxy exited"
            assert time.monotonic() < deadline, "proxy did not become ready"
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

        def ask(question):
            body = {"model": "demo", "messages": [{"role": "user", "content": question}]}
            return httpx.post(url + "/v1/chat/completions", json=body, timeout=30)

        first = ask("How do I reset my password?")
        assert first.headers["x-semcache"] == "miss"
        # the entry is written just after the response is sent
        deadline = time.monotonic() + 10
        admin = {"Authorization": "Bearer t"}
        while httpx.get(url + "/_semcache/admin/stats", headers=admin).json()["stores"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        para = ask("What are the steps to reset my password?")
        assert para.headers["x-semcache"] == "hit", para.headers
        assert para.json() == first.json()
        other = ask("How do I delete my account?")
        assert other.headers["x-semcache"] == "miss"
        assert fake.calls == 2
        stats = httpx.get(url + "/metrics").text
        assert 'semcache_requests_total{result="hit"} 1.0' in stats
    finally:
        proc.terminate()
        proc.wait(20)
