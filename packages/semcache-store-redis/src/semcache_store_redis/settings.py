"""Settings of the Redis response store (group ``redis``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache.settings import check_declared, setting

__all__ = ["REDIS_URI", "RedisSettings"]

REDIS_URI = "SEMANTIC_CACHE_REDIS_URI"


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Redis as the response store; chosen by ``auto`` when a URI is set."""

    group_name: ClassVar[str] = "redis"
    auto_store: ClassVar[tuple[str, str]] = ("response_store", "redis")

    redis_uri: str | None = setting(
        REDIS_URI,
        None,
        "Redis URI (redis://... or rediss://...) for the response store.",
        secret=True,
    )

    def __post_init__(self) -> None:
        check_declared(self)

    def configured(self) -> bool:
        return bool(self.redis_uri)
