"""Settings: the engine's knobs, and the way each plugin declares its own.

The cache, the middleware and the proxy all read one frozen :class:`Settings` (the
engine's knobs, ``SEMANTIC_CACHE_*`` variables). A plugin or adapter declares its own
settings the same way, in a frozen dataclass of its own whose fields come from
:func:`setting` (environment variable, default, range, doc, secret), and publishes it
as an entry point ``settings.NAME`` in group ``semcache`` (or with
:func:`register_settings`). Every group is validated when :meth:`Settings.from_env`
runs, listed by :func:`settings_table` (the docs tables and ``--help``), and read by its
plugin with :meth:`Settings.group`. Values for any group may be given in code
(``SemanticCache(pg_uri=...)``, ``Settings.from_env(redis_uri=...)``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from semcache import env
from semcache.errors import SettingsError

if TYPE_CHECKING:
    from semcache.config import ConfigFile
    from semcache.http.routes import RoutePolicy

__all__ = [
    "Settings",
    "SettingsError",
    "SettingsGroup",
    "check_declared",
    "declared_fields",
    "load_settings",
    "register_settings",
    "setting",
    "settings_groups",
    "settings_help",
    "settings_table",
]

G = TypeVar("G")

CORE_GROUP = "core"
"""Name of the engine's own group (:class:`Settings`)."""

_ENTRY_POINT_GROUP = "semcache"
_ENTRY_POINT_PREFIX = "settings."

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _parse_optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _parse_optional_int(raw: str) -> int | None:
    return int(raw) if raw.strip() else None


def _parse_optional_float(raw: str) -> float | None:
    return float(raw) if raw.strip() else None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "int": int,
    "float": float,
    "str": str.strip,
    "str | None": _parse_optional_str,
    "int | None": _parse_optional_int,
    "float | None": _parse_optional_float,
}


def setting(
    var: str,
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
) -> Any:
    """Declare one setting: a dataclass field read from the environment variable ``var``.

    The field's type (``bool``, ``int``, ``float``, ``str``, or one of them ``| None``)
    says how the variable is parsed; ``low``/``high``/``choices`` bound it; ``doc`` is
    its line in the docs and ``--help``; a ``secret`` value is masked in ``repr``.
    """
    meta = {
        "env": var,
        "doc": doc,
        "low": low,
        "high": high,
        "choices": choices,
        "secret": secret,
    }
    return field(default=default, metadata=meta)


class SettingsGroup(Protocol):
    """What a settings group is: a frozen dataclass of :func:`setting` fields.

    ``group_name`` names it (the docs and ``--help`` show it under that name). A store
    plugin that the ``auto`` store choice should pick when it is configured also sets
    a class attribute ``auto_store = (kind, plugin name)``, e.g.
    ``("vector_store", "pgvector")``, and a method ``configured() -> bool``.
    """

    group_name: ClassVar[str]


def declared_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    """The fields of a settings group that are settings (declared with :func:`setting`)."""
    return [f for f in dataclasses.fields(cls) if "env" in f.metadata]


def load_settings(cls: type[G], environ: Mapping[str, str] | None = None, **overrides: Any) -> G:
    """Build the settings group ``cls`` from ``environ`` (default ``os.environ``).

    Keyword overrides win over the environment. Raises :class:`SettingsError` naming
    the variable and the accepted range for an invalid value or an unknown name.
    """
    environ = os.environ if environ is None else environ
    known = declared_fields(cls)
    values: dict[str, Any] = {}
    for f in known:
        var = f.metadata["env"]
        if f.name in overrides or var not in environ:
            continue
        raw = environ[var]
        try:
            values[f.name] = _PARSERS[_type_name(f)](raw)
            _check(f, values[f.name])
        except (ValueError, SettingsError) as exc:
            raise SettingsError(f"{var}={raw!r} is invalid: {_accepted(f)}") from exc
    unknown = set(overrides) - {f.name for f in known}
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values.update(overrides)
    return cls(**values)


def check_declared(instance: object) -> None:
    """Validate every declared field of a settings group (call from ``__post_init__``)."""
    for f in declared_fields(type(instance)):
        _check(f, getattr(instance, f.name))


# -- the groups a process knows ------------------------------------------------------

_registered: dict[str, type[Any]] = {}
_discovered: dict[str, type[Any]] | None = None
_lock = threading.Lock()


def register_settings(cls: type[Any]) -> None:
    """Add a settings group in code (an entry point ``settings.NAME`` does the same)."""
    global _discovered
    with _lock:
        _registered[cls.group_name] = cls
        _discovered = None


def settings_groups() -> dict[str, type[Any]]:
    """Every settings group: the engine's (``core``) first, then the plugins' by name."""
    global _discovered
    with _lock:
        if _discovered is None:
            found: dict[str, type[Any]] = {}
            for ep in entry_points(group=_ENTRY_POINT_GROUP):
                if ep.name.startswith(_ENTRY_POINT_PREFIX):
                    found[ep.name[len(_ENTRY_POINT_PREFIX) :]] = ep.load()
            found.update(_registered)
            found.pop(CORE_GROUP, None)
            _discovered = {CORE_GROUP: Settings, **dict(sorted(found.items()))}
        return dict(_discovered)


def _plugin_groups() -> list[type[Any]]:
    return [cls for name, cls in settings_groups().items() if name != CORE_GROUP]


def _owner(name: str) -> type[Any] | None:
    for cls in _plugin_groups():
        if any(f.name == name for f in declared_fields(cls)):
            return cls
    return None


@dataclass(frozen=True, slots=True)
class Settings:
    """The engine's knobs. Build with :meth:`from_env`, override with :meth:`replace`.

    Values for the plugins' own settings groups travel along (given in code, or the
    environment read by :meth:`from_env`); a plugin reads its group with :meth:`group`.
    """

    group_name: ClassVar[str] = CORE_GROUP

    config: str | None = setting(
        env.CONFIG,
        None,
        "Path of a TOML configuration file: any setting by name (lower case, without "
        "`SEMANTIC_CACHE_`), per-route policies, upstreams, prices. Variables override it.",
    )

    # Engine
    enabled: bool = setting(
        env.ENABLED, True, "Turn the cache off entirely (requests pass through)."
    )
    threshold: float | None = setting(
        env.THRESHOLD,
        None,
        "Cosine similarity a semantic hit needs; empty means the embedder model's tuned default.",
        low=0.0,
        high=1.0,
    )
    ttl: int = setting(
        env.TTL, 86400, "Seconds an entry lives; 0 keeps entries until evicted.", low=0
    )
    max_ttl: int | None = setting(
        env.MAX_TTL,
        None,
        "Upper bound for a per-request TTL (X-Semcache-TTL); unset: the `ttl` setting, so a "
        "client cannot keep an answer longer than the operator chose.",
        low=0,
    )
    top_k: int = setting(
        env.TOP_K, 4, "Candidates fetched from the vector search.", low=1, high=100
    )
    verifier: str = setting(
        env.VERIFIER,
        "default",
        "Check after the vector search: `default` (rule-based), `none`, or a plugin name.",
    )
    verifier_params: str | None = setting(
        env.VERIFIER_PARAMS,
        None,
        "Levels file for the default verifier and the threshold, written by `semcache tune`; "
        "applied only with the embedding model it was fitted for.",
    )
    context_mode: str = setting(
        env.CONTEXT_MODE,
        "turns",
        "Earlier conversation turns: `exact` (part of the partition), `semantic` (embedded "
        "whole, matched with their own threshold) or `turns` (each turn embedded and paired "
        "with the other conversation's; chatter and unrelated turns left out).",
        choices=("exact", "semantic", "turns"),
    )
    context_threshold: float = setting(
        env.CONTEXT_THRESHOLD,
        0.9,
        "Cosine similarity the earlier turns need in `semantic` context mode.",
        low=0.0,
        high=1.0,
    )

    # Time budgets and the breaker
    lookup_timeout_ms: int = setting(
        env.LOOKUP_TIMEOUT_MS, 2000, "Whole-lookup budget; past it the request is a miss.", low=1
    )
    store_timeout_ms: int = setting(
        env.STORE_TIMEOUT_MS, 250, "Budget for one vector or response store call.", low=1
    )
    flush_timeout_ms: int = setting(
        env.FLUSH_TIMEOUT_MS,
        60_000,
        "Budget for a flush (everything, a partition, or by path, model, tenant or "
        "credential), which walks every entry it removes; one cut off is finished by "
        "sending it again.",
        low=1,
    )
    embedder_timeout_ms: int = setting(
        env.EMBEDDER_TIMEOUT_MS, 1500, "Budget for one embedding call.", low=1
    )
    single_flight_timeout: float = setting(
        env.SINGLE_FLIGHT_TIMEOUT,
        60.0,
        "Seconds a request waits for an identical one already asking the upstream "
        "(single flight) before asking itself.",
        low=0.0,
    )
    start_timeout: float = setting(
        env.START_TIMEOUT,
        60.0,
        "Seconds an app's start-up (ASGI lifespan) or its first requests (Django, Flask) wait "
        "for the cache to be ready (model loaded, stores open); 0 loads it in the background.",
        low=0.0,
    )
    breaker_failures: int = setting(
        env.BREAKER_FAILURES, 3, "Consecutive failures that open a component's breaker.", low=1
    )
    breaker_cooldown_ms: int = setting(
        env.BREAKER_COOLDOWN_MS, 5000, "How long an open breaker skips its component.", low=0
    )

    # Embedder
    embedder_type: str = setting(
        env.EMBEDDER_TYPE,
        "huggingface",
        "Embedder plugin: huggingface, openai, ollama, cohere, voyage or a third-party name.",
    )
    embedder_model: str | None = setting(
        env.EMBEDDER_MODEL,
        None,
        "Model name or local path; empty means the plugin's default "
        "(all-MiniLM-L6-v2 for huggingface).",
    )
    embedder_device: str = setting(
        env.EMBEDDER_DEVICE,
        "cpu",
        "Device for local models: cpu, cuda, mps.",
        choices=("cpu", "cuda", "mps"),
    )
    embedder_backend: str = setting(
        env.EMBEDDER_BACKEND,
        "auto",
        "Local model runtime (huggingface plugin): auto (onnx on cpu when ONNX Runtime is "
        "installed, else torch), torch, onnx or onnx-int8.",
        choices=("auto", "torch", "onnx", "onnx-int8"),
    )
    embedder_threads: int = setting(
        env.EMBEDDER_THREADS, 1, "Threads a local model may use per call.", low=1, high=256
    )
    embedder_dimensions: int | None = setting(
        env.EMBEDDER_DIMENSIONS, None, "Output dimensions for APIs that can shorten vectors.", low=1
    )
    embedder_base_url: str | None = setting(
        env.EMBEDDER_BASE_URL, None, "Base URL of an embedding API (OpenAI-compatible, Ollama...)."
    )
    embedder_api_key: str | None = setting(
        env.EMBEDDER_API_KEY,
        None,
        "API key for the embedding API; else the provider's own variable (OPENAI_API_KEY...).",
        secret=True,
    )
    embedder_input_type: str | None = setting(
        env.EMBEDDER_INPUT_TYPE, None, "Input type for providers that take one (Cohere, Voyage)."
    )
    embedder_max_retries: int = setting(
        env.EMBEDDER_MAX_RETRIES, 2, "Retries on 429 and 5xx from an embedding API.", low=0
    )
    batch_max_size: int = setting(
        env.BATCH_MAX_SIZE, 32, "Micro-batching: most texts sent to the model in one call.", low=1
    )
    batch_window_ms: float = setting(
        env.BATCH_WINDOW_MS,
        2.0,
        "Micro-batching: how long a batch waits for company while another call is running.",
        low=0.0,
        high=1000.0,
    )
    batch_queue_max_ms: float | None = setting(
        env.BATCH_QUEUE_MAX_MS,
        None,
        "Load shedding: when a text's vector is expected later than this (texts queued "
        "for the model times its measured time per text), the lookup or store takes the "
        "exact path only. Unset: three quarters of what is left of the lookup's budget.",
        low=1.0,
    )

    # Stores
    vector_store: str = setting(
        env.VECTOR_STORE,
        "auto",
        "Vector store plugin; `auto` picks pgvector when PG_URI is set, else memory.",
    )
    response_store: str = setting(
        env.RESPONSE_STORE,
        "auto",
        "Response store plugin; `auto` picks redis when REDIS_URI is set, else memory.",
    )
    prefix: str = setting(
        env.PREFIX, "semcache", "Name prefix for tables and keys, so deployments can share servers."
    )

    # HTTP adapters
    max_body_bytes: int = setting(
        env.MAX_BODY_BYTES, 1 << 20, "Request bodies larger than this pass through uncached.", low=0
    )
    auth_mode: str = setting(
        env.AUTH_MODE,
        "partition",
        "Requests with credentials: `partition` (cache per credential hash), `bypass`, or "
        "`shared` (one cache for everyone; only for public answers).",
        choices=("partition", "bypass", "shared"),
    )
    tenant_header: str | None = setting(
        env.TENANT_HEADER,
        None,
        "Header naming the tenant, trusted only when set (e.g. set by your gateway).",
    )
    identity_headers: str | None = setting(
        env.IDENTITY_HEADERS,
        None,
        "Further request headers that say who asks (comma-separated, e.g. `X-Token`), "
        "treated like Authorization, the providers' key headers and Cookie.",
    )
    client_cache_control: str = setting(
        env.CLIENT_CACHE_CONTROL,
        "identified",
        "Who may refresh an entry (`Cache-Control: no-cache`) or set its TTL "
        "(`X-Semcache-TTL`): `all`, `identified` (requests with a credential or tenant) "
        "or `none`. `no-store` and a TTL of 0 are always honoured.",
        choices=("all", "identified", "none"),
    )
    upstream_429_threshold: int = setting(
        env.UPSTREAM_429_THRESHOLD,
        5,
        "Consecutive upstream 429s to one requester's misses that open that requester's "
        "upstream breaker; 0 disables it.",
        low=0,
    )
    upstream_429_cooldown: float = setting(
        env.UPSTREAM_429_COOLDOWN,
        30.0,
        "Seconds a requester's open upstream breaker answers its misses with 503, when the "
        "429 carried no Retry-After.",
        low=0.0,
    )
    # Client controls, each off until the operator turns it on
    namespace_header: str | None = setting(
        env.NAMESPACE_HEADER,
        None,
        "Request header a client may set to narrow its partition (e.g. "
        "`X-Semcache-Namespace`); it adds to the partition, never replaces the credential. "
        "Unset: the header is ignored.",
    )
    client_modes: bool = setting(
        env.CLIENT_MODES,
        False,
        "Honour `X-Semcache-Mode: read-only` (serve from the cache, never store) and "
        "`write-only` (always ask the upstream, store its answer; who may is "
        "`client_cache_control`'s rule). Off: the header is ignored.",
    )

    environ: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """The ``SEMANTIC_CACHE_*`` variables read by :meth:`from_env` (for the plugins' groups)."""
    plugin_values: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    """Values for plugins' settings given in code, as ``(name, value)`` pairs."""
    config_file: ConfigFile | None = field(default=None, repr=False, compare=False)
    """The configuration file :meth:`from_env` read (the ``config`` setting), validated."""

    def __post_init__(self) -> None:
        check_declared(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``SEMANTIC_CACHE_*`` variable; keyword overrides win over the environment.

        Overrides may name any group's setting (``pg_uri``, ``proxy_port``...). Every
        known group is validated here, so a bad value fails at start-up.
        """
        environ = os.environ if environ is None else environ
        loaded = _config_file(environ, overrides)
        if loaded is not None:
            # The file is below the environment: a variable overrides its setting.
            env_of = {
                f.name: f.metadata["env"]
                for g in settings_groups().values()
                for f in declared_fields(g)
            }
            from_file = {
                k: v
                for k, v in loaded.settings.items()
                if env_of[k] not in environ and k not in overrides
            }
            overrides = {**from_file, **overrides}
        own_names = {f.name for f in declared_fields(cls)}
        own = {k: v for k, v in overrides.items() if k in own_names}
        others = {k: v for k, v in overrides.items() if k not in own_names}
        core = load_settings(cls, environ, **own)
        variables = {
            f.metadata["env"] for g in settings_groups().values() for f in declared_fields(g)
        }
        snapshot = tuple(sorted((v, environ[v]) for v in variables if v in environ))
        result = core._with(environ=snapshot, plugin_values=others)
        return dataclasses.replace(result, config_file=loaded) if loaded else result

    @property
    def routes(self) -> tuple[RoutePolicy, ...]:
        """The configuration file's per-route policies, in order (none without a file)."""
        return self.config_file.routes if self.config_file is not None else ()

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some values changed (any group's; validated like any other)."""
        own_names = {f.name for f in declared_fields(type(self))}
        own = {k: v for k, v in overrides.items() if k in own_names}
        others = {k: v for k, v in overrides.items() if k not in own_names}
        changed = dataclasses.replace(self, **own) if own else self
        if not others:
            return changed
        return changed._with(
            environ=self.environ, plugin_values={**dict(self.plugin_values), **others}
        )

    def _with(
        self, *, environ: tuple[tuple[str, str], ...], plugin_values: Mapping[str, Any]
    ) -> Settings:
        unknown = sorted(name for name in plugin_values if _owner(name) is None)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        result = dataclasses.replace(
            self, environ=environ, plugin_values=tuple(sorted(plugin_values.items()))
        )
        for cls in _plugin_groups():
            result.group(cls)  # validates that group's variables and values
        return result

    def group(self, cls: type[G]) -> G:
        """The settings group ``cls`` with this object's environment and code values."""
        names = {f.name for f in declared_fields(cls)}
        values = {k: v for k, v in self.plugin_values if k in names}
        return load_settings(cls, dict(self.environ), **values)

    def __repr__(self) -> str:
        parts = [_shown(f, getattr(self, f.name)) for f in declared_fields(type(self))]
        for name, value in self.plugin_values:
            owner = _owner(name)
            fields = {f.name: f for f in declared_fields(owner)} if owner else {}
            parts.append(_shown(fields[name], value) if name in fields else f"{name}={value!r}")
        return f"Settings({', '.join(parts)})"


def _config_file(environ: Mapping[str, str], overrides: Mapping[str, Any]) -> ConfigFile | None:
    """The file named by the ``config`` setting (code, else the environment), loaded."""
    path = overrides["config"] if "config" in overrides else environ.get(env.CONFIG)
    if path is None or not str(path).strip():
        return None
    from semcache.config import load_config

    return load_config(str(path).strip())


def _shown(f: dataclasses.Field[Any], value: Any) -> str:
    if f.metadata["secret"] and value is not None:
        value = "***"
    return f"{f.name}={value!r}"


def _type_name(f: dataclasses.Field[Any]) -> str:
    """``"int"``, ``"str | None"``...: the annotation as written, with or without
    ``from __future__ import annotations`` in the declaring module."""
    kind = f.type
    if isinstance(kind, str):
        return kind
    return kind.__name__ if isinstance(kind, type) else str(kind)


def _accepted(f: dataclasses.Field[Any]) -> str:
    meta = f.metadata
    kind = _type_name(f).replace(" | None", "")
    if kind == "bool":
        return "expected a boolean (true/false, 1/0, yes/no, on/off)"
    if meta["choices"]:
        return "expected one of " + ", ".join(meta["choices"])
    bounds = ""
    if meta["low"] is not None and meta["high"] is not None:
        bounds = f" between {meta['low']:g} and {meta['high']:g}"
    elif meta["low"] is not None:
        bounds = f" of at least {meta['low']:g}"
    optional = " (or empty)" if "None" in _type_name(f) else ""
    article = "an" if kind == "int" else "a"
    noun = {"int": "integer", "float": "number", "str": "string"}[kind]
    return f"expected {article} {noun}{bounds}{optional}"


def _check(f: dataclasses.Field[Any], value: Any) -> None:
    meta = f.metadata
    if value is None:
        if "None" not in _type_name(f):
            raise SettingsError(f"{meta['env']} must be set: {_accepted(f)}")
        return
    kind = _type_name(f).replace(" | None", "")
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if ok and meta["choices"] is not None:
        ok = value in meta["choices"]
    if ok and meta["low"] is not None:
        ok = value >= meta["low"]
    if ok and meta["high"] is not None:
        ok = value <= meta["high"]
    if not ok:
        raise SettingsError(f"{meta['env']}={value!r} is invalid: {_accepted(f)}")


def _default_text(f: dataclasses.Field[Any]) -> str:
    default = f.default
    if default is None:
        return "(empty)"
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"


def settings_table(group: str | None = None, names: Iterable[str] | None = None) -> str:
    """A Markdown table of one group's settings (``group``), or of every group's.

    Generated from the declarations: the docs and ``--help`` never list a setting
    by hand. ``names`` keeps only those fields. A variable declared by several groups
    (the HNSW knobs) is listed once.
    """
    groups = settings_groups()
    chosen: Iterable[type[Any]] = groups.values() if group is None else [groups[group]]
    wanted = None if names is None else set(names)
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    seen: set[str] = set()
    for cls in chosen:
        for f in declared_fields(cls):
            var = f.metadata["env"]
            if var in seen or (wanted is not None and f.name not in wanted):
                continue
            seen.add(var)
            rows.append(f"| `{var}` | {_default_text(f)} | {f.metadata['doc']} |")
    return "\n".join(rows)


def settings_help() -> str:
    """Every group's variables as plain text, for a command's ``--help``."""
    lines: list[str] = []
    seen: set[str] = set()
    for name, cls in settings_groups().items():
        entries = [f for f in declared_fields(cls) if f.metadata["env"] not in seen]
        if not entries:
            continue
        lines.append(f"{name}:")
        for f in entries:
            seen.add(f.metadata["env"])
            default = "(empty)" if f.default is None else f.default
            lines.append(f"  {f.metadata['env']} [default {default}]: {f.metadata['doc']}")
    return "\n".join(lines)
