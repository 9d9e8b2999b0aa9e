"""Plugin discovery: entry points in group ``semcache``, pluggy hook specs.

An entry point is named ``KIND.NAME`` (``embedder.huggingface``,
``vector_store.pgvector``, ``response_store.redis``, ``verifier.NAME``, ``judge.NAME``) and points at
a module or object implementing the hooks below. Only the plugin a setting chooses is
imported, so the core never pays for torch or a database driver it does not use.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from semcache.errors import PluginNotFoundError

if TYPE_CHECKING:
    from semcache.protocols import Embedder, ResponseStore, VectorStore, Verifier
    from semcache.settings import Settings
    from semcache.verify.judge import Judge

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginNotFoundError",
    "create_embedder",
    "create_judge",
    "create_response_store",
    "create_vector_store",
    "create_verifier",
    "hookimpl",
    "hookspec",
    "register",
    "response_store_name",
    "vector_store_name",
]

ENTRY_POINT_GROUP = "semcache"

hookspec = pluggy.HookspecMarker("semcache")
hookimpl = pluggy.HookimplMarker("semcache")

# Where the first-party plugins live, for the "install this" message.
_KNOWN_DISTRIBUTIONS = {
    "embedder.huggingface": "semcache-embed-hf",
    "embedder.openai": "semcache-embed-openai",
    "embedder.ollama": "semcache-embed-ollama",
    "embedder.cohere": "semcache-embed-cohere",
    "embedder.voyage": "semcache-embed-voyage",
    "vector_store.pgvector": "semcache-store-pgvector",
    "response_store.redis": "semcache-store-redis",
    "judge.llm": "semcache-judge-llm",
}

_registered: dict[str, object] = {}


class SemcacheHookSpecs:
    """What a plugin may implement. Each hook gets the chosen ``name`` and returns an
    instance, or ``None`` when the name is not its own."""

    @hookspec(firstresult=True)
    def semcache_create_embedder(self, name: str, settings: Settings) -> Embedder | None:
        """Build an embedder (model loading may block: it runs in a worker thread)."""

    @hookspec(firstresult=True)
    def semcache_create_vector_store(
        self, name: str, settings: Settings, model_id: str, dimension: int
    ) -> VectorStore | None:
        """Build the vector store for one embedder configuration; connect lazily."""

    @hookspec(firstresult=True)
    def semcache_create_response_store(
        self, name: str, settings: Settings, model_id: str, dimension: int
    ) -> ResponseStore | None:
        """Build the response store for one embedder configuration; connect lazily."""

    @hookspec(firstresult=True)
    def semcache_create_verifier(self, name: str, settings: Settings) -> Verifier | None:
        """Build a verifier."""

    @hookspec(firstresult=True)
    def semcache_create_judge(self, name: str, settings: Settings) -> Judge | None:
        """Build a judge for the grey zone (:mod:`semcache.verify.judge`)."""


def register(kind: str, name: str, plugin: object) -> None:
    """Register a plugin in code (same hooks as an entry point; wins over one)."""
    _registered[f"{kind}.{name}"] = plugin


def _load(kind: str, name: str) -> pluggy.PluginManager:
    key = f"{kind}.{name}"
    plugin = _registered.get(key)
    if plugin is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == key]
        if not found:
            raise PluginNotFoundError(_missing_message(kind, name))
        plugin = found[0].load()
    manager = pluggy.PluginManager("semcache")
    manager.add_hookspecs(SemcacheHookSpecs)
    manager.register(plugin, name=key)
    return manager


def _missing_message(kind: str, name: str) -> str:
    key = f"{kind}.{name}"
    label = kind.replace("_", " ")
    dist = _KNOWN_DISTRIBUTIONS.get(key)
    if dist:
        return f"{label} {name!r} needs its package: pip install {dist}"
    installed = sorted(
        ep.name.split(".", 1)[1]
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.name.startswith(kind + ".")
    )
    return (
        f"no {label} plugin named {name!r} is installed "
        f"(installed: {', '.join(installed) or 'none'}); a plugin registers an entry point "
        f"'{key}' in group '{ENTRY_POINT_GROUP}'"
    )


def _created(kind: str, name: str, result: Any) -> Any:
    if result is None:
        raise PluginNotFoundError(f"the {kind.replace('_', ' ')} plugin {name!r} returned nothing")
    return result


def create_embedder(settings: Settings) -> Embedder:
    name = settings.embedder_type
    hook = _load("embedder", name).hook
    return _created("embedder", name, hook.semcache_create_embedder(name=name, settings=settings))  # type: ignore[no-any-return]


def _store_name(kind: str, choice: str, settings: Settings) -> str:
    """The store plugin to use: the setting, or for ``auto`` the first configured group's."""
    if choice != "auto":
        return choice
    from semcache.settings import settings_groups

    for group in settings_groups().values():
        auto = getattr(group, "auto_store", None)
        if auto is not None and auto[0] == kind and settings.group(group).configured():
            return str(auto[1])
    return "memory"


def vector_store_name(settings: Settings) -> str:
    """The vector store plugin ``settings`` choose (``auto`` resolved)."""
    return _store_name("vector_store", settings.vector_store, settings)


def response_store_name(settings: Settings) -> str:
    """The response store plugin ``settings`` choose (``auto`` resolved)."""
    return _store_name("response_store", settings.response_store, settings)


def create_vector_store(settings: Settings, model_id: str, dimension: int) -> VectorStore:
    name = vector_store_name(settings)
    hook = _load("vector_store", name).hook
    result = hook.semcache_create_vector_store(
        name=name, settings=settings, model_id=model_id, dimension=dimension
    )
    return _created("vector_store", name, result)  # type: ignore[no-any-return]


def create_response_store(settings: Settings, model_id: str, dimension: int) -> ResponseStore:
    name = response_store_name(settings)
    hook = _load("response_store", name).hook
    result = hook.semcache_create_response_store(
        name=name, settings=settings, model_id=model_id, dimension=dimension
    )
    return _created("response_store", name, result)  # type: ignore[no-any-return]


def create_verifier(settings: Settings, name: str | None = None) -> Verifier | None:
    """The verifier ``name`` (default: the ``verifier`` setting); ``"none"`` is no verifier.

    When the ``judge`` setting names a judge, the verifier comes wrapped in a
    :class:`~semcache.verify.judge.GreyZoneVerifier` with that judge.
    """
    from semcache.verify.judge import with_judge

    return with_judge(_rules(settings, name), settings)


def _rules(settings: Settings, name: str | None) -> Verifier | None:
    name = settings.verifier if name is None else name
    if name == "none":
        return None
    if name == "default":
        from semcache.verify import DefaultVerifier
        from semcache.verify.levels import load_levels

        if settings.verifier_params:
            return DefaultVerifier(**load_levels(settings.verifier_params).verifier_options())
        return DefaultVerifier()
    hook = _load("verifier", name).hook
    return _created("verifier", name, hook.semcache_create_verifier(name=name, settings=settings))  # type: ignore[no-any-return]


def create_judge(settings: Settings, name: str) -> Judge:
    """The judge plugin ``name`` (``llm``: ``semcache-judge-llm``)."""
    hook = _load("judge", name).hook
    return _created("judge", name, hook.semcache_create_judge(name=name, settings=settings))  # type: ignore[no-any-return]
