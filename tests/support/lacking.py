"""A store without some of its optional methods, as one written before they existed."""

from __future__ import annotations

from typing import Any

__all__ = ["Lacking"]


class Lacking:
    """Everything of ``inner`` but the methods named in ``missing``."""

    def __init__(self, inner: Any, *missing: str) -> None:
        self._inner = inner
        self._missing = frozenset(missing)

    def __getattr__(self, name: str) -> Any:
        if name in self._missing:
            raise AttributeError(name)
        return getattr(self._inner, name)
