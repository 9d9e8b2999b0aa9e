"""Under steady load through the proxy, kill and restart Redis, then PostgreSQL.

The proxy runs as a child process on a private ``redis-server`` and a private
PostgreSQL cluster (never the shared servers), with the model-free test embedder.
Eight clients keep asking questions and paraphrases, streamed and not, and check
every answer (see :mod:`benchmarks.load`). Redis is killed with SIGKILL and restarted
empty; PostgreSQL is stopped like a crash (``pg_ctl stop -m immediate``) and
restarted. Expected: no client error at all (the upstream stays up, so any error is
the cache's), ``/readyz`` reports the outage, and the hit rate comes back after
each restart. ``python -m benchmarks --faults`` runs the same with the real model.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from benchmarks.procs import PG_BINDIR, REDIS_SERVER
from benchmarks.store_faults import (
    HASHING_ENV,
    HASHING_GROUPS,
    StoreFaultConfig,
    run_store_restarts,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

pytest.importorskip("semcache_store_pgvector")
pytest.importorskip("semcache_store_redis")


@pytest.fixture(scope="module")
def servers_available() -> None:
    if not (PG_BINDIR / "initdb").exists() or shutil.which(REDIS_SERVER) is None:
        pytest.fail(f"needs PostgreSQL binaries in {PG_BINDIR} and redis-server")


def test_kill_and_restart_redis_then_postgres_under_load(
    servers_available: None, tmp_path: Path
) -> None:
    cfg = StoreFaultConfig(
        groups=HASHING_GROUPS,
        embedder_env=dict(HASHING_ENV),
        upstream_latency=0.05,
        workers=8,
        baseline=3.0,
        outage=3.0,
        settle=2.0,
        recover_timeout=30.0,
        extra_env={"SEMANTIC_CACHE_BREAKER_COOLDOWN_MS": "1000"},
    )
    result = asyncio.run(run_store_restarts(tmp_path, cfg))

    assert result["errors"] == 0, result["first_errors"]
    assert result["proxy_alive"]
    assert result["baseline_hit_rate"] >= 0.9, result
    for outage in result["outages"]:
        assert outage["requests_during_outage"] > 0, outage
        assert not outage["readyz_ok_during_outage"], outage
        assert outage["recovery_seconds_after_restart"] is not None, outage
        assert outage["hit_rate_after_recovery"] >= 0.9, outage
        assert outage["readyz_ok_after"], outage
    redis = result["outages"][0]
    assert redis["hit_rate_during_outage"] < 0.5, redis  # every lookup needs Redis
