"""The shared adapter scenarios against FastAPI, over HTTP (uvicorn on a loopback port)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.scenarios.backend import Backend
from tests.support.scenarios.harness import Harness, Scenario, build_cache
from tests.support.scenarios.scenarios import SCENARIOS
from tests.support.servers import serve_asgi

from .fastapi_test_app import build_app


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario) -> None:
    backend = Backend()
    cache = build_cache(**scenario.settings)
    app = build_app(backend, cache)
    with serve_asgi(app) as base_url, httpx.Client(timeout=30, trust_env=False) as client:
        scenario.run(Harness(base_url, backend, cache, client))
