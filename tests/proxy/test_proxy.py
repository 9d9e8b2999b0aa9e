import json
import threading

import httpx
import pytest

from semcache_proxy.testing import FakeLLM
from tests.support.ports import free_port
from tests.support.servers import serve_asgi

from .conftest import make_proxy

CHAT = "/v1/chat/completions"


def chat(question, **extra):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}], **extra}


def test_miss_then_exact_then_paraphrase_hit(proxy_url, fake):
    with httpx.Client(base_url=proxy_url) as client:
        first = client.post(CHAT, json=chat("How do I reset my password on the website?"))
        assert first.status_code == 200 and first.headers["x-semcache"] == "miss"
        again = client.post(CHAT, json=chat("how do I reset my password on the website"))
        assert again.headers["x-semcache"] == "hit"
        assert again.json() == first.json()
        para = client.post(CHAT, json=chat("how do I reset my password on the web site please"))
        assert para.headers["x-semcache"] == "hit"
        assert 0.8 <= float(para.headers["x-semcache-similarity"]) < 1.0
    assert fake.calls == 1


def test_forwards_method_path_query_and_headers(proxy_url):
    with httpx.Client(base_url=proxy_url) as client:
        r = client.request(
            "PUT",
            "/echo/a/b%20c?x=1&y=%2F",
            content=b"raw body",
            headers={
                "X-Custom": "kept",
                "Connection": "keep-alive, X-Drop-Me",
                "X-Drop-Me": "1",
                "Proxy-Authorization": "secret",
                "TE": "trailers",
            },
        )
    seen = r.json()
    assert seen["method"] == "PUT"
    assert seen["path"] == "/echo/a/b c"
    assert seen["query"] == "x=1&y=%2F"
    assert seen["body"] == "raw body"
    headers = seen["headers"]
    assert headers["x-custom"] == "kept"
    for dropped in ("x-drop-me", "proxy-authorization", "te"):
        assert dropped not in headers


def test_host_is_rewritten_to_the_upstream(upstream, fake):
    app = make_proxy(upstream)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        seen = client.get("/echo/x", headers={"Host": "client-facing.example"}).json()
    assert seen["headers"]["host"] == upstream.removeprefix("http://")


def test_sse_streams_through_then_replays_on_hit(upstream, fake):
    import asyncio

    app = make_proxy(upstream)
    with serve_asgi(app) as url:
        release = threading.Event()

        # The upstream holds its second chunk until the client has seen the first.
        async def wait_release():
            while not release.is_set():  # noqa: ASYNC110 - set from another thread
                await asyncio.sleep(0.005)

        class Gate:
            async def wait(self):
                await wait_release()

        fake.stream_release = Gate()
        body = chat("stream me the weather report for today", stream=True)
        with httpx.Client(base_url=url, timeout=10) as client:
            with client.stream("POST", CHAT, json=body) as r:
                assert r.headers["x-semcache"] == "miss"
                assert r.headers["content-type"].startswith("text/event-stream")
                chunks = r.iter_raw()
                first = next(chunks)
                assert first.startswith(b"data: ")  # arrived while the upstream was still held
                release.set()
                streamed = first + b"".join(chunks)
            assert streamed.rstrip().endswith(b"data: [DONE]")
            fake.stream_release = None
            replay = client.post(CHAT, json=body)
        assert replay.headers["x-semcache"] == "hit"
        assert replay.headers["content-type"].startswith("text/event-stream")
        assert replay.content.rstrip().endswith(b"data: [DONE]")
        assert _sse_text(replay.content) == _sse_text(streamed)
    assert fake.calls == 1


def _sse_text(raw):
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:])["choices"][0]["delta"]["content"])
    return "".join(out)


@pytest.mark.parametrize("stream", [False, True])
def test_gzip_upstream_body_and_header_agree(stream):
    fake = FakeLLM(gzip=True)
    with serve_asgi(fake.app) as upstream:
        app = make_proxy(upstream)
        with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
            body = chat("compress this answer please", stream=stream)
            headers = {"Accept-Encoding": "gzip"}
            miss = client.post(CHAT, json=body, headers=headers)
            hit = client.post(CHAT, json=body, headers=headers)
            plain = client.post(
                CHAT,
                json=chat("compress this answer please, but I take no gzip"),
                headers={"Accept-Encoding": "identity"},
            )
    for r in (miss, hit):
        assert r.headers["content-encoding"] == "gzip"
        # httpx decoded it with the header it got: the bytes and the header agree
        assert r.text.rstrip().endswith("data: [DONE]") if stream else r.json()["choices"]
    assert hit.headers["x-semcache"] == "hit"
    assert hit.content == miss.content
    assert "content-encoding" not in plain.headers  # the proxy added no Accept-Encoding


def test_upstream_timeout_is_a_504(upstream, fake):
    fake.latency = 2.0
    app = make_proxy(upstream, timeout=0.3)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        r = client.post(CHAT, json=chat("slow question"))
    assert r.status_code == 504
    assert r.json()["error"]["type"] == "upstream_timeout"


def test_connection_refused_is_a_502():
    app = make_proxy(f"http://127.0.0.1:{free_port()}")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        r = client.post(CHAT, json=chat("anyone there"))
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "upstream_unreachable"


@pytest.mark.parametrize("stream", [False, True])
def test_reset_mid_response_is_not_stored(upstream, fake, stream):
    fake.reset_mid_stream = True
    app = make_proxy(upstream)
    body = chat("this answer will break halfway", stream=stream)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        with pytest.raises(httpx.HTTPError):
            client.post(CHAT, json=body).read()
        fake.reset_mid_stream = False
        after = client.post(CHAT, json=body)
    assert after.headers["x-semcache"] == "miss"
    assert after.status_code == 200


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
def test_upstream_errors_pass_through_and_are_not_stored(upstream, fake, status):
    fake.status = status
    app = make_proxy(upstream, upstream_429_threshold=0)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        first = client.post(CHAT, json=chat("error question"))
        second = client.post(CHAT, json=chat("error question"))
    assert first.status_code == second.status_code == status
    assert first.json()["error"]["message"] == f"status {status}"
    assert second.headers["x-semcache"] == "miss"
    assert fake.calls == 2


@pytest.mark.parametrize("header", ["Authorization", "api-key", "x-api-key"])
def test_credentials_partition_the_cache(upstream, fake, header):
    app = make_proxy(upstream)
    body = chat("what is our refund policy")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        a1 = client.post(CHAT, json=body, headers={header: "key-a"})
        b1 = client.post(CHAT, json=body, headers={header: "key-b"})
        a2 = client.post(CHAT, json=body, headers={header: "key-a"})
    assert (a1.headers["x-semcache"], b1.headers["x-semcache"], a2.headers["x-semcache"]) == (
        "miss",
        "miss",
        "hit",
    )
    assert a2.json() == a1.json() != b1.json()


def test_shared_mode_lets_keys_share(upstream, fake):
    app = make_proxy(upstream, auth_mode="shared")
    body = chat("what is our refund policy")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        client.post(CHAT, json=body, headers={"Authorization": "Bearer a"})
        other = client.post(CHAT, json=body, headers={"Authorization": "Bearer b"})
    assert other.headers["x-semcache"] == "hit"


def test_health_ready_and_metrics(proxy_url):
    with httpx.Client(base_url=proxy_url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        client.post(CHAT, json=chat("count me in the metrics"))
        client.post(CHAT, json=chat("count me in the metrics"))
        client.get("/echo/bypassed")
        text = client.get("/metrics").text
    assert 'semcache_requests_total{result="miss"} 1.0' in text
    assert 'semcache_requests_total{result="hit"} 1.0' in text
    assert 'semcache_requests_total{result="bypass"} 1.0' in text
    assert "semcache_lookup_seconds_count" in text
    assert "semcache_upstream_seconds_count" in text
    assert "semcache_hit_similarity_count 1.0" in text
    assert "semcache_tokens_saved_total" in text and "semcache_tokens_saved_total 0.0" not in text
    assert "semcache_bytes_saved_total" in text
    assert 'semcache_cache_events_total{event="lookups_shed_to_exact"} 0.0' in text
    assert 'semcache_breaker_open{component="embedder"} 0.0' in text
    assert "semcache_upstream_breakers_open 0.0" in text


def test_admin_api(proxy_url):
    auth = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=proxy_url) as client:
        assert client.get("/_semcache/admin/stats").status_code == 401
        assert (
            client.get(
                "/_semcache/admin/stats", headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        miss = client.post(CHAT, json=chat("admin question one"))
        assert client.post(CHAT, json=chat("admin question one")).headers["x-semcache"] == "hit"
        stats = client.get("/_semcache/admin/stats", headers=auth).json()
        assert stats["entries"] == 1 and stats["exact_hits"] == 1
        entry = client.post(CHAT, json=chat("admin question one")).headers["x-semcache-entry"]
        assert client.delete(f"/_semcache/admin/entries/{entry}", headers=auth).json() == {
            "deleted": True
        }
        assert client.post(CHAT, json=chat("admin question one")).headers["x-semcache"] == "miss"
        flushed = client.post("/_semcache/admin/flush", headers=auth).json()
        assert flushed["flushed"] == 1
        assert client.post(CHAT, json=chat("admin question one")).headers["x-semcache"] == "miss"
    assert miss.status_code == 200


def test_admin_disabled_without_token_and_paths_configurable(upstream, fake):
    app = make_proxy(upstream, health_path="/_proxy/health", metrics_path="/_proxy/metrics")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/_proxy/health").status_code == 200
        # the default paths now belong to the upstream
        assert client.get("/healthz").text == "ok"
        assert client.get("/_semcache/admin/stats").status_code == 404  # forwarded, not answered


def test_cli_help_lists_options_and_variables():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "semcache_proxy.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag, var in [
        ("--upstream", "SEMANTIC_CACHE_PROXY_UPSTREAM"),
        ("--port", "SEMANTIC_CACHE_PROXY_PORT"),
        ("--workers", "SEMANTIC_CACHE_PROXY_WORKERS"),
        ("--host", "SEMANTIC_CACHE_PROXY_HOST"),
    ]:
        assert flag in out and var in out
    bad = subprocess.run(
        [sys.executable, "-m", "semcache_proxy.cli", "--port", "99999"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "SEMANTIC_CACHE_PROXY_PORT" in bad.stderr
