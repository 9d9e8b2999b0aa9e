"""An adapter's configuration mapping (a framework's ``SEMCACHE`` setting), parsed once.

Django's ``SEMCACHE`` setting and Flask's ``app.config["SEMCACHE"]`` hold the same
keys: :class:`~semcache.Settings` field names and the adapter options below, case
insensitive, with dotted import paths allowed for the cache and the extractors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from semcache.settings import Settings, SettingsError, declared_fields, settings_groups

if TYPE_CHECKING:
    from semcache.cache import SemanticCache

__all__ = ["ADAPTER_OPTIONS", "HTTP_SETTING_NAMES", "is_cache", "parse_adapter_config"]

HTTP_SETTING_NAMES = (
    "enabled",
    "max_body_bytes",
    "max_ttl",
    "auth_mode",
    "tenant_header",
    "identity_headers",
    "client_cache_control",
    "namespace_header",
    "client_modes",
    "upstream_429_threshold",
    "upstream_429_cooldown",
    "single_flight_timeout",
    "start_timeout",
    "lookup_timeout_ms",
)
"""The engine settings that the HTTP rules read (every HTTP adapter's own knobs)."""

ADAPTER_OPTIONS = frozenset(
    {
        "cache",
        "methods",
        "path_prefix",
        "paths",
        "exact_paths",
        "extract_query",
        "extract_model",
        "extract_partition",
        "ignored_fields",
        "max_response_bytes",
    }
)
"""Keys of an adapter's configuration mapping that are not :class:`Settings` fields."""

_EXTRACTORS = ("extract_query", "extract_model", "extract_partition")


def parse_adapter_config(
    config: Mapping[str, Any], **overrides: Any
) -> tuple[Settings, dict[str, Any]]:
    """``(settings, options)`` from a configuration mapping; ``overrides`` win.

    Settings of any group (the engine's, a store's...) override the ``SEMANTIC_CACHE_*`` environment (with a ``cache``
    instance: its settings, for the request rules only, as the cache keeps its own).
    ``cache`` and the extractors may be dotted import paths (``"myapp.cache.tenant"``
    or ``"myapp.cache:tenant"``). Raises :class:`SettingsError` when invalid.
    """
    values = {str(k).lower(): v for k, v in config.items()}
    values.update(overrides)
    setting_names = {f.name for g in settings_groups().values() for f in declared_fields(g)}
    unknown = set(values) - setting_names - ADAPTER_OPTIONS
    if unknown:
        raise SettingsError(f"unknown semcache option(s): {', '.join(sorted(unknown))}")
    options = {k: v for k, v in values.items() if k in ADAPTER_OPTIONS}
    setting_values = {k: v for k, v in values.items() if k in setting_names}
    for name in ("cache", *_EXTRACTORS):
        if isinstance(options.get(name), str):
            options[name] = _import(options[name], name)
    cache = options.get("cache")
    if cache is not None and not (is_cache(cache) or callable(cache)):
        raise SettingsError("cache must be a SemanticCache or a function returning one")
    for name in _EXTRACTORS:
        if options.get(name) is not None and not callable(options[name]):
            raise SettingsError(f"{name} must be a callable (request, body) -> str | None")
    # A configuration file named here is read like one named in the environment.
    named = {"config": setting_values.pop("config")} if "config" in setting_values else {}
    base = cache.settings if is_cache(cache) else Settings.from_env(**named)
    settings = base.replace(**setting_values) if setting_values else base
    return settings, options


def is_cache(value: object) -> TypeGuard[SemanticCache]:
    """Is ``value`` a cache instance (rather than a function returning one)?"""
    return hasattr(value, "lookup") and hasattr(value, "store") and hasattr(value, "settings")


def _import(path: str, name: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise SettingsError(f"{name}={path!r}: expected a dotted path like 'package.module.name'")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(f"{name}={path!r} could not be imported: {exc}") from exc
    return value
