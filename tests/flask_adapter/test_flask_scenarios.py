"""The shared adapter scenarios against Flask: its test client and a WSGI server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from semcache import sync
from tests.support.scenarios.backend import Backend
from tests.support.scenarios.harness import Harness, Scenario, build_cache, loopback_client
from tests.support.scenarios.scenarios import SCENARIOS
from tests.support.servers import serve_wsgi

from .flask_test_app import FlaskTestClientTransport, build_app

MODES = ["test-client", "wsgi"]


@contextmanager
def _running(mode: str, backend: Backend, scenario: Scenario) -> Iterator[Harness]:
    cache = build_cache(**scenario.settings)
    app = build_app(backend, cache)
    try:
        if mode == "test-client":

            def test_client() -> httpx.Client:
                return httpx.Client(transport=FlaskTestClientTransport(app), timeout=30)

            with test_client() as client:
                yield Harness(
                    "http://localhost", backend, cache, client, client_factory=test_client
                )
        else:
            with serve_wsgi(app) as url, loopback_client() as client:
                yield Harness(url, backend, cache, client)
    finally:
        sync.run(cache.close(), 10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario, mode: str) -> None:
    backend = Backend()
    with _running(mode, backend, scenario) as harness:
        scenario.run(harness)
