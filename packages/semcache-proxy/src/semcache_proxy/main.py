"""Module-level app for ``uvicorn semcache_proxy.main:app`` (settings from the environment)."""

import logging
import sys

from semcache.telemetry import ACCESS_LOGGER
from semcache_proxy._app import create_semantic_cache_proxy_app

__all__ = ["app"]

app = create_semantic_cache_proxy_app()


def _access_log_to_stdout() -> None:
    """uvicorn configures its own loggers only: without this, the access log's INFO
    lines would reach no handler. A process that set up logging keeps its own."""
    if not app.cached_app.access_log or ACCESS_LOGGER.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ACCESS_LOGGER.addHandler(handler)
    ACCESS_LOGGER.setLevel(logging.INFO)
    ACCESS_LOGGER.propagate = False


_access_log_to_stdout()
