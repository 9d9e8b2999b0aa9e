"""Where an API key comes from, and base URLs without their version path."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from semcache.env import EMBEDDER_API_KEY
from semcache.errors import MissingAPIKeyError

__all__ = ["key_variables_text", "require_api_key", "resolve_api_key", "strip_suffix_path"]


def resolve_api_key(
    explicit: str | None,
    explicit_source: str,
    variables: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """The API key and where it came from: ``explicit`` first, then the first set variable;
    ``(None, "")`` when there is none."""
    if explicit:
        return explicit, explicit_source
    environ = os.environ if environ is None else environ
    for var in variables:
        value = environ.get(var, "").strip()
        if value:
            return value, var
    return None, ""


def key_variables_text(variables: Sequence[str]) -> str:
    """``SEMANTIC_CACHE_EMBEDDER_API_KEY or X or Y``: every variable that supplies a key."""
    return " or ".join([EMBEDDER_API_KEY, *variables])


def require_api_key(
    explicit: str | None, provider: str, display_name: str, variables: Sequence[str]
) -> tuple[str, str]:
    """Like :func:`resolve_api_key`, for providers that cannot work without a key: raise
    :class:`~semcache.errors.MissingAPIKeyError` naming every variable that would supply it."""
    key, source = resolve_api_key(explicit, "the api_key argument", variables)
    if key is None:
        raise MissingAPIKeyError(
            f"the {display_name} embedder needs an API key: set {key_variables_text(variables)}",
            provider=provider,
        )
    return key, source


def strip_suffix_path(base_url: str, *suffixes: str) -> str:
    """``base_url`` without a trailing slash or a trailing API version path the caller adds."""
    url = base_url.strip().rstrip("/")
    for suffix in suffixes:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url
