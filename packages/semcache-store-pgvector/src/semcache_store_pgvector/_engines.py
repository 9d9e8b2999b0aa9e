"""One SQLAlchemy engine (one connection pool) per process, event loop and configuration.

Every store instance of a process that points at the same database with the same pool
settings shares one pool, so several embedder configurations or several caches in one
worker do not multiply connections. The pool is disposed when its last user closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

__all__ = [
    "EngineConfig",
    "acquire_engine",
    "asyncpg_dsn",
    "pool_exhausted",
    "release_engine",
    "shared_engines",
]

log = logging.getLogger("semcache")

_SCHEMES = ("postgresql", "postgres")


def asyncpg_dsn(uri: str) -> str:
    """A libpq-style ``postgresql://`` URI for asyncpg, from any PostgreSQL URI.

    Accepts ``postgresql://``, ``postgres://`` and SQLAlchemy spellings such as
    ``postgresql+asyncpg://`` or ``postgresql+psycopg://``: the driver part is dropped,
    since this store always talks through asyncpg.
    """
    scheme, sep, rest = uri.strip().partition("://")
    if not sep or scheme.split("+", 1)[0].lower() not in _SCHEMES:
        raise ValueError("expected a PostgreSQL URI such as postgresql://user@host:5432/db")
    return "postgresql://" + rest


@dataclass(frozen=True)
class EngineConfig:
    """Everything that makes two pools different."""

    dsn: str
    pool_size: int
    max_overflow: int
    connect_timeout: float
    command_timeout: float
    session: tuple[tuple[str, str], ...] = field(default=())

    def session_sql(self) -> str:
        return "".join(f"SET {name} = {value};" for name, value in self.session)


@dataclass
class _Shared:
    engine: AsyncEngine
    loop: asyncio.AbstractEventLoop
    users: int = 0


_shared: dict[tuple[int, int, EngineConfig], _Shared] = {}


def _create(config: EngineConfig) -> AsyncEngine:
    session_sql = config.session_sql()

    async def connect() -> Any:
        # asyncpg parses the libpq URI itself (sslmode, several hosts, passfile...).
        # Named, so a DBA can tell the cache's connections apart (unless the URI names them).
        named = {} if "application_name=" in config.dsn else {"application_name": "semcache"}
        conn = await asyncpg.connect(
            config.dsn,
            timeout=config.connect_timeout,
            command_timeout=config.command_timeout,
            server_settings=named,
        )
        if session_sql:
            try:
                await conn.execute(session_sql)
            except BaseException:
                conn.terminate()
                raise
        return conn

    # Session settings are SET after connecting rather than sent as start-up
    # parameters, which connection poolers such as PgBouncer may reject.
    return create_async_engine(
        "postgresql+asyncpg://",
        async_creator=connect,
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        pool_timeout=max(config.connect_timeout, config.command_timeout),
        pool_recycle=1800,
    )


def pool_exhausted(engine: AsyncEngine, config: EngineConfig) -> bool:
    """Is every connection the pool of ``config`` may hold checked out (a new caller
    must wait)?

    Waiting for another caller's connection is the process's own backlog; opening a new
    connection (room left) is PostgreSQL's time, and a dead server shows there.
    """
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return False
    return bool(pool.checkedout() >= config.pool_size + max(0, config.max_overflow))


def acquire_engine(config: EngineConfig) -> AsyncEngine:
    """The shared engine for ``config`` in this process and running loop."""
    loop = asyncio.get_running_loop()
    key = (os.getpid(), id(loop), config)
    shared = _shared.get(key)
    if shared is None or shared.loop is not loop:
        shared = _shared[key] = _Shared(_create(config), loop)
    shared.users += 1
    return shared.engine


async def release_engine(engine: AsyncEngine, *, close_within: float = 1.0) -> None:
    """Give back an engine; the last user disposes of its pool."""
    for key, shared in list(_shared.items()):
        if shared.engine is not engine:
            continue
        shared.users -= 1
        if shared.users > 0:
            return
        del _shared[key]
        break
    try:
        async with asyncio.timeout(close_within):
            await engine.dispose()
    except Exception as exc:  # a dead or paused server: drop the sockets instead
        log.debug("semcache: closing PostgreSQL connections failed (%s)", exc)
        with contextlib.suppress(Exception):
            await engine.dispose(close=False)


def shared_engines() -> Mapping[tuple[int, int, EngineConfig], _Shared]:
    """The live pools (for tests and diagnostics)."""
    return dict(_shared)
