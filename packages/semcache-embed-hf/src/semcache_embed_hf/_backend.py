"""Which runtime runs the model: the one asked for, or for ``auto`` the fastest one here.

``auto`` picks ONNX Runtime (fp32: the same vectors as torch, so the same id, index and
threshold) on CPU when it and what the one-time export needs are installed; torch on a
GPU or MPS (sentence-transformers drives those directly) or when ONNX Runtime is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Literal, get_args

__all__ = ["Backend", "BackendChoice", "onnx_missing", "resolve_backend"]

Backend = Literal["torch", "onnx", "onnx-int8"]
"""A runtime that runs the model."""

BackendChoice = Literal["auto", "torch", "onnx", "onnx-int8"]
"""What a user may ask for: a runtime, or ``auto``."""

# Run: imported now (cheap, and loaded anyway when chosen), so a broken install is seen
# here rather than at load. Export: only looked up (importing onnx alone takes a second).
_RUN_MODULES = ("onnxruntime", "tokenizers")
_EXPORT_MODULES = ("onnx", "torch")


def _importable(module: str, *, load: bool) -> bool:
    try:
        if load:
            importlib.import_module(module)
            return True
        return importlib.util.find_spec(module) is not None
    except Exception:  # ImportError, or whatever a native library that fails to load raises
        return False


def onnx_missing() -> str | None:
    """The first module the ONNX backend needs that is not importable, else ``None``."""
    for module in _RUN_MODULES:
        if not _importable(module, load=True):
            return module
    for module in _EXPORT_MODULES:
        if not _importable(module, load=False):
            return module
    return None


def resolve_backend(choice: str, device: str) -> tuple[Backend, str]:
    """The runtime for ``choice`` on ``device``, and why (a few words for the log)."""
    if choice != "auto":
        if choice not in get_args(Backend):
            raise ValueError(
                f"backend must be one of {', '.join(get_args(BackendChoice))}: {choice!r}"
            )
        return choice, "asked for"  # type: ignore[return-value]
    kind = device.partition(":")[0]
    if kind != "cpu":
        return "torch", f"device {device}: torch drives it directly"
    missing = onnx_missing()
    if missing is not None:
        return "torch", (
            f"{missing} is not installed; pip install 'semcache-embed-hf[cpu]' for ONNX Runtime"
        )
    return "onnx", "ONNX Runtime is installed and the device is cpu"
