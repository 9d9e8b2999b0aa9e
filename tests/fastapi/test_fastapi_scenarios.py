"""The shared adapter scenarios against FastAPI, over HTTP (uvicorn on a loopback port)."""

from __future__ import annotations

import httpx
import pytest
from fastapi_test_app import build_app

from scenarios.backend import Backend
from scenarios.harness import Harness, Scenario, build_cache
from scenarios.scenarios import SCENARIOS
from scenarios.servers import serve_asgi


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario) -> None:
    backend = Backend()
    cache = build_cache(**scenario.settings)
    app = build_app(backend, cache)
    with serve_asgi(app) as base_url, httpx.Client(timeout=30, trust_env=False) as client:
        scenario.run(Harness(base_url, backend, cache, client))
