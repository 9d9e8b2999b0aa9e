"""The embedded store's on-disk copy is readable by its owner only."""

from __future__ import annotations

import stat

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_data_folder_is_0700_and_its_files_0600(tmp_path):
    folder = tmp_path / "cache" / "data"
    settings = Settings.from_env({}, data_path=str(folder), batch_max_size=1)
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None) as cache:
        assert await cache.store("what is my balance", b"42", partition="alice")
    assert mode(folder) == 0o700
    files = list(folder.iterdir())
    assert files, "nothing was written"
    for file in files:
        assert mode(file) == 0o600, (file.name, oct(mode(file)))


async def test_an_existing_store_file_is_tightened(tmp_path):
    settings = Settings.from_env({}, data_path=str(tmp_path), batch_max_size=1)
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None) as cache:
        await cache.store("what is my balance", b"42", partition="alice")
    for file in tmp_path.glob("*.sqlite3"):
        file.chmod(0o644)
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None) as cache:
        assert await cache.lookup("what is my balance", partition="alice")
    for file in tmp_path.glob("*.sqlite3"):
        assert mode(file) == 0o600
