"""Settings of the embedded stores (group ``embedded``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache import env
from semcache.settings import check_declared, setting

__all__ = ["EmbeddedStoreSettings"]


@dataclass(frozen=True, slots=True)
class EmbeddedStoreSettings:
    """The in-process vector index and response store, and their on-disk copy."""

    group_name: ClassVar[str] = "embedded"

    max_entries: int = setting(
        env.MAX_ENTRIES,
        100_000,
        "Embedded stores: entries kept before the least recently used are evicted.",
        low=1,
    )
    max_bytes: int = setting(
        env.MAX_BYTES,
        512 * 1024 * 1024,
        "Embedded stores: bytes each store counts (payloads and texts; vectors at 4 bytes"
        " a dimension) before the least recently used are evicted.",
        low=1,
    )
    data_path: str | None = setting(
        env.DATA_PATH,
        None,
        "Embedded stores: folder for the on-disk copy; empty keeps memory only.",
    )
    hnsw_m: int = setting(env.HNSW_M, 16, "HNSW index: links per node.", low=2, high=100)
    hnsw_ef_construction: int = setting(
        env.HNSW_EF_CONSTRUCTION, 64, "HNSW index: candidate list while building.", low=4, high=1000
    )
    hnsw_ef_search: int = setting(
        env.HNSW_EF_SEARCH, 40, "HNSW index: candidate list while searching.", low=1, high=1000
    )

    def __post_init__(self) -> None:
        check_declared(self)
