"""The access log: one JSON line per request on the ``semcache.access`` logger.

Switched on by the ``access_log`` setting. The line is the message itself, so any
handler writes it as it is (``logging.basicConfig(format="%(message)s")``); the same
fields ride along as ``record.semcache`` for structured handlers.
"""

from __future__ import annotations

import json
import logging

from semcache.telemetry.record import RequestRecord

__all__ = ["ACCESS_LOGGER", "log_request"]

ACCESS_LOGGER = logging.getLogger("semcache.access")


def log_request(record: RequestRecord) -> None:
    """Write ``record``'s line (at INFO)."""
    if not ACCESS_LOGGER.isEnabledFor(logging.INFO):
        return
    fields = record.as_log()
    ACCESS_LOGGER.info(
        json.dumps(fields, separators=(",", ":"), ensure_ascii=False),
        extra={"semcache": fields},
    )
