"""The dashboard's files and its data endpoint, over a real proxy, and the request history
it charts: the page holds no secret and exists only with the admin API; its data needs
the token."""

from __future__ import annotations

import httpx
import pytest

from semcache_proxy._history import RequestHistory
from tests.proxy.conftest import make_proxy
from tests.support.servers import serve_asgi

CHAT = "/v1/chat/completions"
DASHBOARD = "/_semcache/admin/dashboard"
OVERVIEW = "/_semcache/admin/overview"
TOKEN = "s3cret"


def chat(question: str) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": question}]}


def test_no_admin_token_no_dashboard(upstream: str) -> None:
    with serve_asgi(make_proxy(upstream)) as url, httpx.Client(base_url=url) as client:
        for path in (DASHBOARD, DASHBOARD + "/dashboard.js", OVERVIEW):
            response = client.get(path)
            # Not the proxy's to answer: it went to the upstream, which has no such path.
            assert response.status_code == 404 and "semcache-admin" not in response.text


def test_the_page_and_its_files_carry_no_secret_and_forbid_framing(upstream: str) -> None:
    app = make_proxy(upstream, admin_token=TOKEN, admin_path="/ops/admin")
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        page = client.get("/ops/admin/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # The admin path is the configured one; the assets are found under it.
        assert 'content="/ops/admin"' in page.text
        assert 'src="/ops/admin/dashboard/dashboard.js"' in page.text
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        script = client.get("/ops/admin/dashboard/dashboard.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        style = client.get("/ops/admin/dashboard/dashboard.css")
        assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
        for body in (page.text, script.text, style.text):
            assert TOKEN not in body
        assert client.get("/ops/admin/dashboard/../stats").status_code in (401, 404)
        assert client.get("/ops/admin/dashboard/secrets.txt").status_code == 404
        assert client.post("/ops/admin/dashboard").status_code == 405


def test_the_overview_needs_the_token_and_counts_requests(upstream: str) -> None:
    with (
        serve_asgi(make_proxy(upstream, admin_token=TOKEN)) as url,
        httpx.Client(base_url=url) as client,
    ):
        assert client.get(OVERVIEW).status_code == 401
        assert client.get(OVERVIEW, headers={"Authorization": "Bearer nope"}).status_code == 401
        decisions = [client.post(CHAT, json=chat("hello")).headers["x-semcache"] for _ in "ab"]
        assert decisions == ["miss", "hit"]
        body = client.get(OVERVIEW, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert body["requests"] == {"hit": 1, "miss": 1, "bypass": 0}
    assert body["latency"]["hit"]["count"] == 1 and body["latency"]["miss"]["count"] == 1
    assert body["stores"]["entries"] == 1 and body["stores"]["vectors"] == 1
    assert set(body["breakers"]) == {"embedder", "vector store", "response store"}
    slots = body["history"]["slots"]
    assert len(slots) == 360 and body["history"]["slot_seconds"] == 10
    assert sum(s["hit"] for s in slots) == 1 and sum(s["miss"] for s in slots) == 1


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_history_keeps_one_window_of_slots() -> None:
    clock = Clock(1_000_000.0)
    history = RequestHistory(slot_seconds=10, slots=6, clock=clock)
    history.observe("hit", 0.002)
    history.observe("miss", 0.5)
    clock.now += 10
    history.observe("hit", 0.004)
    series = history.series()["slots"]
    assert [s["start"] for s in series] == [999_960 + 10 * i for i in range(6)]
    assert [(s["hit"], s["miss"]) for s in series][-2:] == [(1, 1), (1, 0)]
    assert series[-2]["miss_seconds"] == pytest.approx(0.5)
    # A window later the ring slot is reused: the old counts are gone, not added to.
    clock.now += 60
    history.observe("hit", 0.001)
    series = history.series()["slots"]
    assert sum(s["hit"] for s in series) == 1 and sum(s["miss"] for s in series) == 0
    assert series[-1]["hit"] == 1
