"""The main job: `semcache-proxy --upstream URL` with no other configuration."""

import os

import httpx

from tests.support.polling import wait_until

from .processes import start_proxy, stop_proxy


def test_default_proxy_serves_a_paraphrase_from_cache(upstream, fake, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    env["SEMANTIC_CACHE_ADMIN_TOKEN"] = "t"
    # loads the real all-MiniLM-L6-v2 model, on ONNX Runtime (exported once per user)
    log = (tmp_path / "proxy.log").open("wb")
    proc, url = start_proxy(
        upstream, env=env, ready_within=120, cwd=tmp_path, log_level="info", stderr=log
    )
    try:

        def ask(question):
            body = {"model": "demo", "messages": [{"role": "user", "content": question}]}
            return httpx.post(url + "/v1/chat/completions", json=body, timeout=30)

        first = ask("How do I reset my password?")
        assert first.headers["x-semcache"] == "miss"
        # the entry is written just after the response is sent
        admin = {"Authorization": "Bearer t"}
        wait_until(
            lambda: httpx.get(url + "/_semcache/admin/stats", headers=admin).json()["stores"] >= 1,
            timeout=10,
            what="the proxy stored the first answer",
        )
        para = ask("What are the steps to reset my password?")
        assert para.headers["x-semcache"] == "hit", para.headers
        assert para.json() == first.json()
        other = ask("How do I delete my account?")
        assert other.headers["x-semcache"] == "miss"
        assert fake.calls == 2
        stats = httpx.get(url + "/metrics").text
        assert 'semcache_requests_total{result="hit"} 1.0' in stats
    finally:
        stop_proxy(proc, within=20)
        log.close()
    # the fast path is the default one, and the log says so
    text = (tmp_path / "proxy.log").read_text()
    assert "semcache: embedder backend onnx (auto: ONNX Runtime is installed" in text, text
