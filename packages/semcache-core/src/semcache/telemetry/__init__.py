"""The operator's view: OpenTelemetry spans and metrics, money and time saved, access log.

- :mod:`~semcache.telemetry.otel`: the OpenTelemetry seam (no import without the package).
- :mod:`~semcache.telemetry.prices`: the price table (shipped defaults, ``prices`` setting).
- :mod:`~semcache.telemetry.savings`: what hits saved, per model, route and tenant.
- :mod:`~semcache.telemetry.record`: what one request did, gathered while it runs.
- :mod:`~semcache.telemetry.access`: the JSON access log.
- :mod:`~semcache.telemetry.settings`: the ``telemetry`` settings group.
"""

from semcache.telemetry.access import ACCESS_LOGGER, log_request
from semcache.telemetry.prices import (
    ModelPrice,
    PriceTable,
    default_prices,
    load_prices,
    parse_prices,
)
from semcache.telemetry.record import RequestRecord, current, recording
from semcache.telemetry.savings import OTHER, Saving, SavingsLedger
from semcache.telemetry.settings import TelemetrySettings

__all__ = [
    "ACCESS_LOGGER",
    "OTHER",
    "ModelPrice",
    "PriceTable",
    "RequestRecord",
    "Saving",
    "SavingsLedger",
    "TelemetrySettings",
    "current",
    "default_prices",
    "load_prices",
    "log_request",
    "parse_prices",
    "recording",
]
