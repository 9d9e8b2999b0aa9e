"""The configuration file: every setting, the per-route policies, upstreams and prices, in TOML.

``SEMANTIC_CACHE_CONFIG=semcache.toml`` (or ``semcache-proxy --config semcache.toml``)
makes :meth:`semcache.Settings.from_env` read it. Top-level keys are settings by name:
the variable's name without ``SEMANTIC_CACHE_``, lower case (``ttl``, ``proxy_upstream``,
``pg_uri``), which is the settings field's name. Tables:

- ``[[routes]]``: ordered per-route policies (:class:`~semcache.http.routes.RoutePolicy`);
- ``[upstreams]``: path prefix -> upstream base URL (the proxy);
- ``[prices]``: model -> ``{input = ..., output = ...}``, USD per million tokens. Where a
  setting named ``prices`` is declared (a price table's file or inline JSON), the table
  is handed to it as inline JSON ``{"models": ...}``, and ``prices = "file"`` sets it.

An environment variable overrides the file's value of its setting. An invalid file
raises :class:`ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semcache.errors import SettingsError
from semcache.http.routes import RoutePolicy

__all__ = ["LIST_SETTINGS", "ConfigError", "ConfigFile", "load_config", "parse_config"]

LIST_SETTINGS = frozenset({"proxy_paths", "proxy_exact_paths", "identity_headers"})
"""Comma-separated settings; the file may give them as an array of strings."""

_TABLES = ("routes", "upstreams", "prices")
_ROUTE_KEYS = ("path", "mode", "ttl", "threshold", "tenant_headers", "tenant_fields")
_PRICE_KEYS = ("input", "output")


class ConfigError(SettingsError):
    """The configuration file is unreadable or invalid; the message names file, line and key."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A validated configuration file.

    ``settings``: setting name -> value (typed as the setting is); ``routes`` in the
    file's order; ``upstreams``: ``(path prefix, base URL)`` pairs, longest prefix first;
    ``prices``: model -> ``{"input": usd_per_million, "output": usd_per_million}``.
    """

    path: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    routes: tuple[RoutePolicy, ...] = ()
    upstreams: tuple[tuple[str, str], ...] = ()
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def load_config(path: str | Path) -> ConfigFile:
    """Read and validate the TOML file at ``path``; :class:`ConfigError` when it cannot be."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc}") from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> ConfigFile:
    """Validate the TOML ``text`` (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}{_quoted_line(text, exc)}") from exc
    return _Reader(text, source).read(data)


def _quoted_line(text: str, exc: tomllib.TOMLDecodeError) -> str:
    found = re.search(r"at line (\d+)", str(exc))
    if not found:
        return ""
    lines = text.splitlines()
    number = int(found.group(1))
    return f": {lines[number - 1].strip()!r}" if 0 < number <= len(lines) else ""


class _Reader:
    """Validates the parsed document; errors carry the line of the key they are about."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = _key_lines(text)

    def fail(self, where: tuple[Any, ...], message: str) -> ConfigError:
        line = _line_of(self.lines, where)
        at = f", line {line}" if line is not None else ""
        return ConfigError(f"{self.source}{at}: {_dotted(where)}: {message}")

    def read(self, data: dict[str, Any]) -> ConfigFile:
        from semcache.settings import declared_fields, settings_groups

        fields = {f.name: f for g in settings_groups().values() for f in declared_fields(g)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in _TABLES:
                continue
            if key == "config":
                raise self.fail((key,), "a configuration file cannot name another one")
            f = fields.get(key)
            if f is None:
                raise self.fail((key,), "unknown setting" + _suggest(key, [*fields, *_TABLES]))
            values[key] = self._setting(key, f, value)
        prices: Any = data.get("prices", {})
        price_setting = fields.get("prices")
        if isinstance(prices, str) and price_setting is not None:
            values["prices"] = self._setting("prices", price_setting, prices)
            prices = {}
        table = self._prices(prices)
        if table and price_setting is not None:
            # The price setting takes a file or inline JSON: the table travels as JSON.
            values["prices"] = json.dumps({"models": table})
        return ConfigFile(
            path=self.source,
            settings=values,
            routes=self._routes(data.get("routes", [])),
            upstreams=self._upstreams(data.get("upstreams", {})),
            prices=table,
        )

    def _setting(self, key: str, f: dataclasses.Field[Any], value: Any) -> Any:
        from semcache.settings import _accepted, _check, _type_name

        kind = _type_name(f)
        if key in LIST_SETTINGS and isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise self.fail((key,), "expected an array of strings")
            value = ",".join(value)
        if "None" in kind and value == "":
            value = None
        elif kind.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            _check(f, value)
        except SettingsError:
            raise self.fail((key,), f"{value!r} is invalid: {_accepted(f)}") from None
        return value

    def _routes(self, routes: Any) -> tuple[RoutePolicy, ...]:
        if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
            raise self.fail(("routes",), "expected an array of tables ([[routes]])")
        found = []
        for index, route in enumerate(routes):
            where = ("routes", index)
            for key in route:
                if key not in _ROUTE_KEYS:
                    raise self.fail((*where, key), "unknown route key" + _suggest(key, _ROUTE_KEYS))
            if "path" not in route:
                raise self.fail(where, "a route needs a path (a glob pattern)")
            for key in ("tenant_headers", "tenant_fields"):
                items = route.get(key, [])
                if not isinstance(items, list) or not all(
                    isinstance(i, str) and i.strip() for i in items
                ):
                    raise self.fail((*where, key), "expected an array of non-empty strings")
            threshold = route.get("threshold")
            if isinstance(threshold, int) and not isinstance(threshold, bool):
                threshold = float(threshold)
            try:
                found.append(
                    RoutePolicy(
                        path=route["path"],
                        mode=route.get("mode", "semantic"),
                        ttl=route.get("ttl"),
                        threshold=threshold,
                        tenant_headers=tuple(route.get("tenant_headers", ())),
                        tenant_fields=tuple(route.get("tenant_fields", ())),
                    )
                )
            except ValueError as exc:
                key, _, message = str(exc).partition(": ")
                value = route.get(key)
                got = f" (got {value!r})" if key in route else ""
                raise self.fail((*where, key), message + got) from None
        return tuple(found)

    def _upstreams(self, upstreams: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(upstreams, dict):
            raise self.fail(("upstreams",), "expected a table of path prefix = upstream URL")
        pairs = []
        for prefix, url in upstreams.items():
            where = ("upstreams", prefix)
            if not prefix.startswith("/"):
                raise self.fail(where, "a path prefix starts with '/'")
            if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
                raise self.fail(where, f"expected an http:// or https:// URL (got {url!r})")
            pairs.append((prefix.rstrip("/") or "/", url.rstrip("/")))
        # Longest prefix first: the most specific mount wins.
        return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))

    def _prices(self, prices: Any) -> dict[str, dict[str, float]]:
        if not isinstance(prices, dict):
            raise self.fail(("prices",), "expected a table of model = {input, output}")
        table: dict[str, dict[str, float]] = {}
        for model, price in prices.items():
            if not isinstance(price, dict):
                raise self.fail(("prices", model), "expected a table: {input = ..., output = ...}")
            entry: dict[str, float] = {}
            for key, value in price.items():
                where = ("prices", model, key)
                if key not in _PRICE_KEYS:
                    raise self.fail(where, "unknown price key" + _suggest(key, _PRICE_KEYS))
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value < 0
                ):
                    raise self.fail(where, f"expected a number of at least 0 (got {value!r})")
                entry[key] = float(value)
            missing = [key for key in _PRICE_KEYS if key not in entry]
            if missing:
                raise self.fail(("prices", model), f"missing {' and '.join(missing)}")
            table[model] = entry
        return table


def _suggest(key: str, known: Any) -> str:
    close = difflib.get_close_matches(key.lower().removeprefix("semantic_cache_"), known, 1, 0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _dotted(where: tuple[Any, ...]) -> str:
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += ("." if out else "") + part
        else:
            out += ("." if out else "") + f'"{part}"'
    return out


# -- where a key is in the text ------------------------------------------------------
# tomllib gives values without positions; the loader finds a key's line itself.

_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _key_parts(raw: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", raw)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """The line of every table header and key in ``text``, by full key path (arrays of
    tables indexed by occurrence). Multi-line values are not looked into."""
    found: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            name = _key_parts(header.group(2))
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (*name, index)
            else:
                table = name
            found.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((*table, *_key_parts(key.group(1))), number)
    return found


def _line_of(lines: dict[tuple[Any, ...], int], where: tuple[Any, ...]) -> int | None:
    """The line of ``where``, else of the nearest enclosing key or table that has one."""
    for end in range(len(where), 0, -1):
        if where[:end] in lines:
            return lines[where[:end]]
    return None
