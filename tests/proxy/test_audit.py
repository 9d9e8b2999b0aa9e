"""Audited hits through the real proxy, with the real default model (all-MiniLM-L6-v2)
and an OpenAI-compatible upstream whose answers depend on the question: shadow calls,
the live false-hit rate on /metrics, quarantine, per-entry thresholds, feedback, the
budget, and failures that leave no outcome."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache.verify.judge import GreyZoneVerifier
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.pausing import SilentAt
from tests.support.polling import wait_until
from tests.support.servers import serve_asgi

CHAT = "/v1/chat/completions"
ADMIN = "/_semcache/admin"
AUTH = {"Authorization": "Bearer s3cret"}

SHIPPING = "How long does shipping take?"
SHIPPING_PARAPHRASE = "How long does shipping usually take?"  # ~0.97 to SHIPPING
DELIVERY = "What is the delivery time for my order?"  # ~0.75 to SHIPPING, same topic
REFUND = "How long does a refund take?"  # ~0.40 to SHIPPING: another question
ORDER_REFUND = "How long does the refund of my order take?"  # ~0.53 to SHIPPING: another

_ANSWERS = {
    "ship": "Standard shipping takes three to five business days; express arrives next day.",
    "deliver": "Standard shipping takes three to five business days; express arrives next day.",
    "refund": "Refunds go back to the original card within five business days of the return.",
    "password": "To reset your password, open Settings, choose Security and click Reset.",
}
_OPENERS = itertools.cycle(["Sure! ", "Of course. ", "Happy to help: "])


class TopicLLM:
    """An OpenAI-compatible chat upstream answering by topic, worded a little
    differently each call (as a model does). ``gate``: cleared, each request waits for
    it once it has been counted; ``status``: answer that status instead."""

    def __init__(self) -> None:
        self.questions: list[str] = []
        self.finished = 0
        self.status: int | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.app = Starlette(routes=[Route(CHAT, self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        question = body["messages"][-1]["content"]
        self.questions.append(question)
        await asyncio.to_thread(self.gate.wait)
        self.finished += 1
        if self.status is not None:
            return JSONResponse({"error": {"message": "down"}}, status_code=self.status)
        topic = next((k for k in _ANSWERS if k in question.lower()), None)
        text = next(_OPENERS) + (_ANSWERS[topic] if topic else "I can help with orders.")
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32},
            }
        )


@dataclass
class Served:
    client: httpx.Client
    upstream: TopicLLM
    cache: SemanticCache
    app: Any

    def ask(self, question: str) -> httpx.Response:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
        response = self.client.post(CHAT, json=body)
        assert response.status_code == 200, response.text
        return response

    def events(self) -> dict[str, int]:
        return self.app.cached_app.engine.auditor.ledger.events()  # type: ignore[no-any-return]

    def wait_events(self, **at_least: int) -> None:
        wait_until(
            lambda: all(self.events()[k] >= v for k, v in at_least.items()),
            timeout=30,
            what=f"audit events {at_least}",
        )

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def state(self, entry: str) -> dict[str, Any] | None:
        response = self.client.get(f"{ADMIN}/audit/{entry}", headers=AUTH)
        return response.json() if response.status_code == 200 else None


@contextmanager
def served(embedder: object, *, audit: bool = True, **settings: Any) -> Iterator[Served]:
    upstream = TopicLLM()
    options: dict[str, Any] = {
        "threshold": 0.3,  # low on purpose: another question can hit
        "verifier": None,
        "admin_token": "s3cret",
        **({"audit_rate": 1.0} if audit else {}),
        **settings,
    }
    cache = SemanticCache(embedder=embedder, **options)  # type: ignore[arg-type]
    with serve_asgi(upstream.app) as upstream_url:
        app = create_semantic_cache_proxy_app(upstream_url, cache)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            yield Served(client, upstream, cache, app)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and found == labels:
            return float(value)
    return None


def test_a_paraphrase_hit_is_audited_and_agrees(real_embedder: object) -> None:
    with served(real_embedder) as s:
        assert s.ask(SHIPPING).headers["x-semcache"] == "miss"
        hit = s.ask(SHIPPING_PARAPHRASE)
        assert hit.headers["x-semcache"] == "hit"
        s.wait_events(agreed=1)
        # The shadow call went upstream, and its answer was not stored nor counted as a miss.
        assert s.upstream.questions == [SHIPPING, SHIPPING_PARAPHRASE]
        assert s.cache.counters["stores"] == 1
        text = s.metrics()
        assert metric(text, "semcache_requests_total", result="miss") == 1
        assert metric(text, "semcache_requests_total", result="hit") == 1
        assert metric(text, "semcache_audits_total", event="started") == 1
        assert metric(text, "semcache_audits_total", event="agreed") == 1
        assert metric(text, "semcache_false_hit_rate") == 0.0
        state = s.state(hit.headers["x-semcache-entry"])
        assert state is not None and state["q"] is False and state["t"] is None
        assert state["s"][0][1] == 1
        # Still served, semantically too; exact hits are never audited.
        assert s.ask(DELIVERY).headers["x-semcache"] == "hit"
        assert s.ask(SHIPPING).headers["x-semcache"] == "hit"
        s.wait_events(agreed=2)
        assert s.events()["sampled"] == 2


def test_a_wrong_hit_is_counted_and_its_entry_quarantined(real_embedder: object) -> None:
    with served(real_embedder) as s:
        s.ask(SHIPPING)
        assert s.ask(SHIPPING_PARAPHRASE).headers["x-semcache"] == "hit"
        s.wait_events(agreed=1)
        wrong = s.ask(REFUND)  # another question, served the shipping answer
        assert wrong.headers["x-semcache"] == "hit"
        assert "shipping" in wrong.json()["choices"][0]["message"]["content"]
        s.wait_events(wrong=1)
        text = s.metrics()
        assert metric(text, "semcache_audits_total", event="wrong") == 1
        assert metric(text, "semcache_false_hit_rate") == 0.5
        rate = metric(
            text, "semcache_false_hit_rate_by_route_tenant", route=CHAT, tenant="anonymous"
        )
        assert rate == 0.5
        assert metric(text, "semcache_false_hit_rate_by_rule", rule="unverified") == 0.5
        assert metric(text, "semcache_audit_quarantined_total") == 1
        assert s.state(wrong.headers["x-semcache-entry"])["q"] is True  # type: ignore[index]
        quarantined = wrong.headers["x-semcache-entry"]
        # Never served semantically again: not the paraphrase that had become an exact
        # key (alias) of the entry, not the wrong question, not a new paraphrase (these
        # may hit the answers stored since, never the quarantined one).
        assert s.ask(SHIPPING_PARAPHRASE).headers["x-semcache"] == "miss"
        for question in (REFUND, DELIVERY):
            assert s.ask(question).headers.get("x-semcache-entry") != quarantined
        # Its own question, asked again word for word, is still answered from it.
        again = s.ask(SHIPPING)
        assert again.headers["x-semcache"] == "hit"
        assert again.headers["x-semcache-entry"] == quarantined


def test_the_entry_threshold_rises_above_the_failing_similarity(real_embedder: object) -> None:
    # A loose bound: one agreeing audit above the failure is evidence enough to keep the
    # entry, served only from the agreeing similarity up.
    with served(real_embedder, max_false_hit_rate=0.75) as s:
        s.ask(SHIPPING)
        paraphrase = s.ask(SHIPPING_PARAPHRASE)
        s.wait_events(agreed=1)
        wrong = s.ask(REFUND)
        s.wait_events(wrong=1)
        failing = float(wrong.headers["x-semcache-similarity"])
        agreeing = float(paraphrase.headers["x-semcache-similarity"])
        state = s.state(wrong.headers["x-semcache-entry"])
        assert state is not None and state["q"] is False
        assert state["t"] > failing
        assert state["t"] == pytest.approx(agreeing, abs=1e-4)
        # Between the failure and the learned bar: no longer served; above it: served.
        assert s.ask(REFUND).headers["x-semcache"] == "miss"
        assert s.ask(DELIVERY).headers["x-semcache"] == "miss"  # ~0.75 < ~0.97
        assert s.ask(SHIPPING_PARAPHRASE).headers["x-semcache"] == "hit"
        assert metric(s.metrics(), "semcache_verifier_rejections_total", rule="audit") == 2


def test_feedback_evicts_the_entry(real_embedder: object) -> None:
    with served(real_embedder, audit=False) as s:
        s.ask(SHIPPING)
        hit = s.ask(SHIPPING_PARAPHRASE)
        entry = hit.headers["x-semcache-entry"]
        assert s.client.post(f"{ADMIN}/feedback", json={"entry": entry}).status_code == 401
        bad = s.client.post(f"{ADMIN}/feedback", json={"entry": 3}, headers=AUTH)
        assert bad.status_code == 400
        done = s.client.post(
            f"{ADMIN}/feedback", json={"entry": entry, "wrong": True}, headers=AUTH
        )
        assert done.status_code == 200 and done.json()["evicted"] is True
        again = s.client.post(f"{ADMIN}/feedback", json={"entry": entry}, headers=AUTH)
        assert again.status_code == 404
        assert s.ask(SHIPPING).headers["x-semcache"] == "miss"
        text = s.metrics()
        assert metric(text, "semcache_audits_total", event="feedback_wrong") == 2
        assert metric(text, "semcache_audits_total", event="started") == 0  # audits off


def test_feedback_on_an_answer_replaced_since_leaves_the_new_one(real_embedder: object) -> None:
    with served(real_embedder, audit=False, client_cache_control="all") as s:
        s.ask(SHIPPING)
        hit = s.ask(SHIPPING_PARAPHRASE)
        entry, old = hit.headers["x-semcache-entry"], hit.headers["x-semcache-entry-version"]
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": SHIPPING}]}
        refresh = s.client.post(CHAT, json=body, headers={"cache-control": "no-cache"})
        assert refresh.headers["x-semcache"] == "miss"  # a new answer, under the same id
        wait_until(lambda: s.cache.counters["stores"] == 2, timeout=30, what="the refresh")
        now = s.ask(SHIPPING)
        assert now.headers["x-semcache-entry"] == entry
        new = now.headers["x-semcache-entry-version"]
        assert new != old
        # The report names the answer it got, which is no longer served: nothing changes.
        for evict in (True, False):
            report = {"entry": entry, "version": old, "wrong": True, "evict": evict}
            stale = s.client.post(f"{ADMIN}/feedback", json=report, headers=AUTH)
            assert stale.status_code == 404 and stale.json()["evicted"] is False
        assert s.state(entry) is None
        assert s.ask(DELIVERY).headers["x-semcache-entry"] == entry  # still served semantically
        bad = s.client.post(f"{ADMIN}/feedback", json={"entry": entry, "version": 7}, headers=AUTH)
        assert bad.status_code == 400
        # A report on the answer served now evicts it.
        done = s.client.post(
            f"{ADMIN}/feedback", json={"entry": entry, "version": new}, headers=AUTH
        )
        assert done.status_code == 200 and done.json()["evicted"] is True
        assert s.ask(SHIPPING).headers["x-semcache"] == "miss"
        assert metric(s.metrics(), "semcache_audits_total", event="feedback_wrong") == 3


def test_a_feedback_answered_503_is_counted_apart_and_once_when_sent_again() -> None:
    # The store takes the report's read and goes silent: 503, send it again. The report
    # counts once, when it is answered; the 503 counts apart.
    store = SilentAt("get")
    settings = {"response_store": store, "lookup_timeout_ms": 500, "store_timeout_ms": 60_000}
    with served(HashingTestEmbedder(), **settings) as s:
        s.ask(SHIPPING)
        hit = s.ask(SHIPPING)  # the same question: an exact hit, never audited
        assert hit.headers["x-semcache"] == "hit"
        report = {
            "entry": hit.headers["x-semcache-entry"],
            "version": hit.headers["x-semcache-entry-version"],
        }
        entered, _ = store.pause_next()  # never released
        failed = s.client.post(f"{ADMIN}/feedback", json=report, headers=AUTH)
        assert failed.status_code == 503 and entered.is_set()
        text = s.metrics()
        assert metric(text, "semcache_audits_total", event="feedback_wrong") == 0
        assert metric(text, "semcache_audits_total", event="feedback_failed") == 1
        done = s.client.post(f"{ADMIN}/feedback", json=report, headers=AUTH)
        assert done.status_code == 200 and done.json()["evicted"] is True
        text = s.metrics()
        assert metric(text, "semcache_audits_total", event="feedback_wrong") == 1
        assert metric(text, "semcache_audits_total", event="feedback_failed") == 1
        stats = s.client.get(f"{ADMIN}/stats", headers=AUTH).json()
        assert (stats["wrong_hit_reports"], stats["wrong_hit_reports_failed"]) == (1, 1)


def test_no_shadow_calls_past_the_budget(real_embedder: object) -> None:
    with served(real_embedder, audit_budget=1) as s:
        s.ask(SHIPPING)
        s.ask(SHIPPING_PARAPHRASE)
        s.wait_events(agreed=1)
        s.ask(DELIVERY)
        s.wait_events(skipped_budget=1)
        assert s.upstream.questions == [SHIPPING, SHIPPING_PARAPHRASE]
        text = s.metrics()
        assert metric(text, "semcache_audits_total", event="sampled") == 2
        assert metric(text, "semcache_audits_total", event="started") == 1


def test_the_shadow_call_never_delays_the_answer(real_embedder: object) -> None:
    with served(real_embedder) as s:
        s.ask(SHIPPING)
        s.upstream.gate.clear()  # every upstream answer waits from now on
        try:
            hit = s.ask(SHIPPING_PARAPHRASE)  # answered while its shadow call waits
            assert hit.headers["x-semcache"] == "hit"
            wait_until(lambda: len(s.upstream.questions) == 2, timeout=30, what="the shadow call")
            assert s.upstream.finished == 1  # the shadow call has not been answered
            assert s.events()["started"] == 1 and s.events()["agreed"] == 0
        finally:
            s.upstream.gate.set()
        s.wait_events(agreed=1)


def test_an_upstream_error_in_the_shadow_call_is_no_outcome(real_embedder: object) -> None:
    with served(real_embedder) as s:
        s.ask(SHIPPING)
        s.upstream.status = 500
        hit = s.ask(SHIPPING_PARAPHRASE)
        assert hit.headers["x-semcache"] == "hit"
        s.wait_events(no_outcome=1)
        assert len(s.upstream.questions) == 2
        assert s.cache.counters["stores"] == 1  # the shadow's answer was not stored
        events = s.events()
        assert events["agreed"] == events["wrong"] == 0
        assert s.state(hit.headers["x-semcache-entry"]) is None  # nothing learned
        assert metric(s.metrics(), "semcache_false_hit_rate") is None
        s.upstream.status = None
        assert s.ask(SHIPPING_PARAPHRASE).headers["x-semcache"] == "hit"


def test_audits_are_off_by_default(real_embedder: object) -> None:
    with served(real_embedder, audit=False) as s:
        s.ask(SHIPPING)
        assert s.ask(SHIPPING_PARAPHRASE).headers["x-semcache"] == "hit"
        assert s.events()["sampled"] == 0
        assert s.upstream.questions == [SHIPPING]


class YesJudge:
    """A grey-zone judge that says yes to every pair: the worst judge, whose hits the
    audits must tell from the rules'."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def same_answer(self, query: str, candidate: str) -> bool | None:
        self.asked.append((query, candidate))
        return True

    async def aclose(self) -> None:
        pass


def test_hits_the_judge_won_have_a_false_hit_rate_of_their_own(real_embedder: object) -> None:
    judge = YesJudge()
    verifier = GreyZoneVerifier(None, judge, floor=0.5)  # the cache tells it the threshold
    with served(real_embedder, threshold=0.9, verifier=verifier) as s:
        s.ask(SHIPPING)
        # ~0.97: at or above the threshold, served without the judge.
        assert s.ask(SHIPPING_PARAPHRASE).headers["x-semcache"] == "hit"
        s.wait_events(agreed=1)
        # ~0.75, the same answer: served on the judge's yes, and right.
        assert s.ask(DELIVERY).headers["x-semcache"] == "hit"
        s.wait_events(agreed=2)
        # ~0.53, another answer: served on the judge's yes, and wrong.
        assert s.ask(ORDER_REFUND).headers["x-semcache"] == "hit"
        s.wait_events(wrong=1)
        text = s.metrics()
    assert [query for query, _ in judge.asked] == [
        "what is the delivery time for my order",
        "how long does the refund of my order take",
    ]
    labels = {"route": CHAT, "tenant": "anonymous"}
    outcomes = "semcache_audit_outcomes_total"
    assert metric(text, outcomes, **labels, rule="verifier", outcome="agreed") == 1
    assert metric(text, outcomes, **labels, rule="verifier", outcome="wrong") is None
    assert metric(text, outcomes, **labels, rule="judge", outcome="agreed") == 1
    assert metric(text, outcomes, **labels, rule="judge", outcome="wrong") == 1
    assert metric(text, "semcache_false_hit_rate_by_rule", rule="verifier") == 0.0
    assert metric(text, "semcache_false_hit_rate_by_rule", rule="judge") == 0.5
    assert metric(text, "semcache_judge_hits_won_total") == 2
