"""Exceptions semcache raises to its callers (never from inside a request path)."""

from __future__ import annotations

__all__ = ["PluginNotFoundError", "SemcacheError", "SettingsError"]


class SemcacheError(Exception):
    """Base class for semcache errors."""


class SettingsError(SemcacheError, ValueError):
    """A setting has an invalid value; the message names the variable and what it accepts."""


class PluginNotFoundError(SemcacheError, LookupError):
    """No installed distribution provides the plugin a setting asks for."""
