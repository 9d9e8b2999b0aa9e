"""A stored answer as a store test writes it: every field set, fresh for ten minutes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from semcache.types import Entry

__all__ = ["an_entry"]


def an_entry(**fields: Any) -> Entry:
    """An entry with a new id in partition ``p``; ``fields`` override any field."""
    values: dict[str, Any] = {
        "entry_id": uuid.uuid4().hex,
        "partition": "p",
        "query": "what is the refund policy",
        "payload": b"answer",
        "metadata": {"status": 200},
        "created_at": time.time(),
        "expires_at": time.time() + 600,
    }
    values.update(fields)
    return Entry(**values)
