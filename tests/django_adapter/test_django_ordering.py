"""Django's own middleware and the cache: answers that depend on the session stay private.

Views here read ``request.user`` (sessions + authentication), ``request.session``, a
CSRF token, or say ``Vary: Cookie``: each answer is for one visitor. Run through
Django's real middleware stack (``SessionMiddleware``, ``CsrfViewMiddleware``,
``AuthenticationMiddleware``...), in the recommended order and in a misplaced one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.views.decorators.vary import vary_on_cookie

import semcache_django.ordering
from semcache import SemanticCache, sync
from tests.support.polling import wait_stores
from tests.support.scenarios.harness import build_cache

SEMCACHE = "semcache_django.SemanticCacheMiddleware"
DJANGO_STACK = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
RECOMMENDED = [DJANGO_STACK[0], SEMCACHE, *DJANGO_STACK[1:]]
"""Right after SecurityMiddleware: above sessions, CSRF, authentication, messages."""
MISPLACED = [*DJANGO_STACK, SEMCACHE]
"""Last, where the README used to put it: below every middleware that adds cookies."""
ORDERS = {"recommended": RECOMMENDED, "misplaced": MISPLACED}

BACKEND = "tests.django_adapter.test_django_ordering.NamedUsers"
Q = {"query": "What should I read next?"}
OTHER = {"query": "What is the capital of France?"}


# -- a user store without a database ---------------------------------------------------------


@dataclass
class NamedUser:
    pk: int
    username: str
    is_active: bool = True
    is_authenticated: bool = True
    is_anonymous: bool = False


USERS = {1: "alice", 2: "bob"}


class NamedUsers:
    """An authentication backend over ``USERS``: ``request.user`` without a database."""

    def get_user(self, user_id: int) -> NamedUser | None:
        name = USERS.get(user_id)
        return NamedUser(user_id, name) if name else None

    async def aget_user(self, user_id: int) -> NamedUser | None:
        return self.get_user(user_id)


# -- views -------------------------------------------------------------------------------------


@login_not_required
def login(request: HttpRequest, user_id: int) -> HttpResponse:
    """Sign in as ``user_id``, as ``django.contrib.auth.login`` would (session keys)."""
    request.session[SESSION_KEY] = str(user_id)
    request.session[BACKEND_SESSION_KEY] = BACKEND
    request.session["name"] = USERS[user_id]
    return HttpResponse("signed in")


def for_user(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"answer": f"for {request.user.username or 'anonymous'}"})


def from_session(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"answer": f"for {request.session.get('name', 'anonymous')}"})


def with_csrf_token(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"answer": "a form", "csrf": get_token(request)})


@vary_on_cookie
def varies_on_cookie(request: HttpRequest) -> JsonResponse:
    name = request.COOKIES.get("sessionid", "anonymous")
    return JsonResponse({"answer": f"for {name[:8]}"})


def public(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"answer": "the same for everyone"})


async def for_user_async(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    return JsonResponse({"answer": f"for {user.username or 'anonymous'}"})


class Routes:
    urlpatterns = [
        path("login/<int:user_id>", login),
        path("ask/user", for_user),
        path("ask/session", from_session),
        path("ask/csrf", with_csrf_token),
        path("ask/vary", varies_on_cookie),
        path("ask/public", public),
        path("ask/user-async", for_user_async),
    ]


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    semcache_django.ordering.forget_warnings()
    yield
    semcache_django.ordering.forget_warnings()


@contextmanager
def app(order: list[str]) -> Iterator[SemanticCache]:
    cache = build_cache()
    try:
        with override_settings(
            MIDDLEWARE=order,
            ROOT_URLCONF=Routes,
            AUTHENTICATION_BACKENDS=[BACKEND],
            SEMCACHE={"cache": cache},
        ):
            yield cache
    finally:
        sync.run(cache.close(), 10)


def post(client: Client, url: str, body: Any = Q) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def signed_in(user_id: int) -> Client:
    client = Client()
    assert client.get(f"/login/{user_id}").status_code == 200
    assert client.cookies["sessionid"].value
    return client


def store_path_works(cache: SemanticCache) -> None:
    """A public answer is stored: the store path runs, so nothing else was stored."""
    anonymous = Client()
    assert post(anonymous, "/ask/public", OTHER).headers["x-semcache"] == "miss"
    wait_stores(cache, 1)
    hit = post(Client(), "/ask/public", OTHER)
    assert hit.headers["x-semcache"] == "hit"


# -- the guarantee ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
@pytest.mark.parametrize("view", ["user", "session"])
def test_an_answer_for_one_user_never_reaches_another(order: list[str], view: str) -> None:
    with app(order) as cache:
        alice, bob, anonymous = signed_in(1), signed_in(2), Client()
        first = post(alice, f"/ask/{view}")
        assert first.headers["x-semcache"] == "miss" and first.json()["answer"] == "for alice"
        store_path_works(cache)
        for client, name in ((bob, "bob"), (anonymous, "anonymous"), (alice, "alice")):
            response = post(client, f"/ask/{view}")
            assert response.headers["x-semcache"] == "miss"
            assert response.json()["answer"] == f"for {name}"
        assert cache.counters["stores"] == 1  # the public answer only


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_a_csrf_token_is_never_stored(order: list[str]) -> None:
    with app(order) as cache:
        alice, bob = signed_in(1), signed_in(2)
        first = post(alice, "/ask/csrf")
        assert first.headers["x-semcache"] == "miss" and first.cookies["csrftoken"].value
        store_path_works(cache)
        second = post(bob, "/ask/csrf")
        assert second.headers["x-semcache"] == "miss"
        assert second.json()["csrf"] != first.json()["csrf"]
        assert cache.counters["stores"] == 1


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_an_answer_that_varies_on_cookie_is_never_stored(order: list[str]) -> None:
    with app(order) as cache:
        alice, bob = signed_in(1), signed_in(2)
        first = post(alice, "/ask/vary")
        assert first.headers["x-semcache"] == "miss" and "Cookie" in first.headers["vary"]
        store_path_works(cache)
        assert post(bob, "/ask/vary").headers["x-semcache"] == "miss"
        assert cache.counters["stores"] == 1


def test_an_answer_behind_login_required_middleware_is_never_served_to_others() -> None:
    # Placed above authentication, the cache answers a hit before the login check runs.
    # The check reads the session for every request, so nothing behind it is stored.
    order = [*RECOMMENDED, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    with app(order) as cache, override_settings(LOGIN_URL="/login/1"):
        alice = signed_in(1)
        first = post(alice, "/ask/public")
        assert first.headers["x-semcache"] == "miss" and first.status_code == 200
        with pytest.raises(AssertionError):  # given time, still nothing stored
            wait_stores(cache, 1, timeout=0.5)
        refused = post(Client(), "/ask/public")
        assert refused.status_code == 302 and refused.headers["x-semcache"] == "miss"
        assert post(alice, "/ask/public").headers["x-semcache"] == "miss"


async def test_an_async_view_answer_for_one_user_never_reaches_another() -> None:
    with app(RECOMMENDED) as cache:
        alice, bob = AsyncClient(), AsyncClient()
        for client, user_id in ((alice, 1), (bob, 2)):
            assert (await client.get(f"/login/{user_id}")).status_code == 200
        body, kind = json.dumps(Q), "application/json"
        first = await alice.post("/ask/user-async", body, content_type=kind)
        assert first.headers["x-semcache"] == "miss"
        assert json.loads(first.content)["answer"] == "for alice"
        public_miss = await AsyncClient().post("/ask/public", json.dumps(OTHER), content_type=kind)
        assert public_miss.headers["x-semcache"] == "miss"
        await sync.loop_thread().run_async(_stored(cache, 1))
        second = await bob.post("/ask/user-async", body, content_type=kind)
        assert second.headers["x-semcache"] == "miss"
        assert json.loads(second.content)["answer"] == "for bob"
        assert cache.counters["stores"] == 1


async def _stored(cache: SemanticCache, count: int) -> None:
    for _ in range(2000):
        if cache.counters["stores"] >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"expected {count} stores")


# -- placement is checked at start-up -------------------------------------------------------------


def _placement_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "semcache" and r.levelno == logging.WARNING and "MIDDLEWARE" in r.getMessage()
    ]


def test_a_misplaced_middleware_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="semcache")
    with app(MISPLACED):
        for _ in range(3):  # each test client loads the middleware: the warning comes once
            assert post(Client(), "/ask/public").status_code == 200
    (message,) = _placement_warnings(caplog)
    for name in ("SessionMiddleware", "CsrfViewMiddleware", "AuthenticationMiddleware"):
        assert name in message
    assert "MessageMiddleware" in message
    assert "above" in message and SEMCACHE in message  # names the fix


@pytest.mark.parametrize(
    "order",
    [
        RECOMMENDED,
        [SEMCACHE, *DJANGO_STACK],
        ["django.middleware.gzip.GZipMiddleware", *RECOMMENDED],
        [SEMCACHE],
    ],
    ids=["recommended", "first", "after-gzip", "alone"],
)
def test_a_good_placement_logs_nothing(order: list[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="semcache")
    with app(order):
        assert post(Client(), "/ask/public").status_code == 200
    assert _placement_warnings(caplog) == []


@pytest.mark.parametrize(
    "late",
    [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.middleware.locale.LocaleMiddleware",
    ],
)
def test_each_cookie_or_vary_middleware_above_the_cache_is_named(
    late: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="semcache")
    with app([late, SEMCACHE]):
        assert post(Client(), "/ask/public").status_code == 200
    (message,) = _placement_warnings(caplog)
    assert late in message
