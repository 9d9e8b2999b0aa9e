"""Splitting a batch of texts at a provider's limits, keeping order."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["split_batches"]


def split_batches(
    texts: Sequence[str], max_items: int, max_bytes: int | None = None, overhead: int = 0
) -> list[list[str]]:
    """Consecutive slices of ``texts``, each within ``max_items`` and, when given, within
    ``max_bytes`` of UTF-8 (plus ``overhead`` per text). A text over the byte budget on
    its own still gets a batch of its own: the API truncates or refuses it, not us."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in texts:
        cost = len(text.encode("utf-8", "surrogatepass")) + overhead if max_bytes else 0
        full = len(current) >= max_items or (
            max_bytes is not None and current and size + cost > max_bytes
        )
        if full:
            batches.append(current)
            current, size = [], 0
        current.append(text)
        size += cost
    if current:
        batches.append(current)
    return batches
