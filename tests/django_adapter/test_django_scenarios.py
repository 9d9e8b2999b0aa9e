"""The shared adapter scenarios against Django: test client, WSGI and ASGI servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings

from semcache import sync
from tests.support.scenarios.backend import Backend
from tests.support.scenarios.harness import Harness, Scenario, build_cache, loopback_client
from tests.support.scenarios.scenarios import SCENARIOS
from tests.support.servers import serve_asgi, serve_wsgi

from .django_test_app import AsyncRoutes, DjangoTestClientTransport, SyncRoutes

MODES = ["test-client", "wsgi", "asgi"]


def _test_client() -> httpx.Client:
    return httpx.Client(transport=DjangoTestClientTransport(), timeout=30)


@contextmanager
def _running(mode: str, backend: Backend, scenario: Scenario) -> Iterator[Harness]:
    cache = build_cache(**scenario.settings)
    routes = AsyncRoutes if mode == "asgi" else SyncRoutes
    with override_settings(
        SEMCACHE={"cache": cache}, SEMCACHE_TEST_BACKEND=backend, ROOT_URLCONF=routes
    ):
        try:
            if mode == "test-client":
                with _test_client() as client:
                    yield Harness(
                        "http://testserver", backend, cache, client, client_factory=_test_client
                    )
            elif mode == "wsgi":
                # Django reads no chunked request body under WSGI (no Content-Length).
                with serve_wsgi(WSGIHandler()) as url, loopback_client() as client:
                    yield Harness(url, backend, cache, client, chunked_requests=False)
            else:
                with serve_asgi(ASGIHandler(), lifespan="off") as url, loopback_client() as client:
                    yield Harness(url, backend, cache, client)
        finally:
            sync.run(cache.close(), 10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario, mode: str) -> None:
    backend = Backend()
    with _running(mode, backend, scenario) as harness:
        scenario.run(harness)
