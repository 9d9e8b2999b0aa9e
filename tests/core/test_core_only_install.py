"""A core-only install (``pip install semcache-core``) imports every public module.

The workspace venv holds every package, so a module of the core that imports httpx, a
database driver or a plugin package would pass every other test and still fail for a
user who installed the core alone. Here a fresh interpreter (``python -I``) refuses any
top-level module that is neither in the standard library nor provided by semcache-core's
declared dependencies (followed transitively), then imports every module of ``semcache``.
Private (``_``-prefixed) modules are imported too: they ship in the same wheel, and one
of them (an httpx transport that only the embedder packages used) is what broke a
core-only install before. A module that needs an optional extra must import lazily, or
fail with an ImportError naming the extra.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib import metadata

from packaging.requirements import Requirement

CORE = "semcache-core"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependencies(dist: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """``dist`` and every distribution it needs (with ``extras``), transitively."""
    seen: set[str] = set()
    todo = [(dist, extras)]
    while todo:
        name, wanted = todo.pop()
        key = _canonical(name)
        if key in seen and not wanted:
            continue
        seen.add(key)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            environments = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(e) for e in environments):
                continue
            try:
                metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                continue  # not installed here: its modules cannot be imported anyway
            todo.append((req.name, frozenset(req.extras)))
    return seen


def _allowed_top_level(dists: set[str]) -> list[str]:
    """The top-level import names the given distributions provide."""
    names = {
        module
        for module, providers in metadata.packages_distributions().items()
        if any(_canonical(p) in dists for p in providers)
    }
    if CORE in dists:
        # An editable install records a path hook, not its package: the core is `semcache`.
        names.add("semcache")
    return sorted(names)


def _extras() -> dict[str, list[str]]:
    """semcache-core's extras and the top-level names only they bring in."""
    base = _dependencies(CORE)
    extras = metadata.metadata(CORE).get_all("Provides-Extra") or []
    return {
        extra: _allowed_top_level(_dependencies(CORE, frozenset({extra})) - base)
        for extra in extras
    }


_CHILD = textwrap.dedent(
    """
    import importlib
    import importlib.abc
    import json
    import pkgutil
    import sys

    allowed = set(json.loads(sys.argv[1]))
    extras = json.loads(sys.argv[2])


    class CoreOnly(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            top = fullname.partition(".")[0]
            if top in sys.stdlib_module_names or top in allowed:
                return None  # let the normal finders do their work
            raise ModuleNotFoundError(
                f"{fullname!r} is not provided by semcache-core's dependencies", name=fullname
            )


    sys.meta_path.insert(0, CoreOnly())
    # Anything site already imported from outside the core's world is forgotten.
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top not in sys.stdlib_module_names and top not in allowed:
            del sys.modules[name]

    import semcache

    failures = {}
    imported = []


    def walk_error(name):
        failures[name] = repr(sys.exc_info()[1])


    names = [
        info.name
        for info in pkgutil.walk_packages(semcache.__path__, "semcache.", onerror=walk_error)
    ]
    for name in ["semcache", *names]:
        if name.rpartition(".")[2] in ("__main__",):
            continue  # runs the CLI
        try:
            importlib.import_module(name)
        except ImportError as exc:
            # Allowed only for a module that needs an extra, saying which one.
            if not any(f"[{extra}]" in str(exc) for extra in extras):
                failures[name] = repr(exc)
            continue
        except Exception as exc:
            failures[name] = repr(exc)
            continue
        imported.append(name)

    # Extras are used lazily: their packages are not imported by any public module.
    leaked = sorted({m for mods in extras.values() for m in mods} & set(sys.modules))
    print(json.dumps({"imported": imported, "failures": failures, "leaked": leaked}))
    """
)


def _run_core_only() -> dict[str, object]:
    allowed = _allowed_top_level(_dependencies(CORE))
    extras = _extras()
    done = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD, json.dumps(allowed), json.dumps(extras)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_dependency_reading_sees_the_core_and_not_the_plugins() -> None:
    allowed = _allowed_top_level(_dependencies(CORE))
    assert {"semcache", "numpy", "pluggy", "hnswlib"} <= set(allowed)
    assert not {"httpx", "semcache_embed_http", "semcache_fastapi", "matplotlib"} & set(allowed)
    assert "matplotlib" in _extras()["plot"]


def test_every_module_imports_with_the_core_dependencies_only() -> None:
    result = _run_core_only()
    assert result["failures"] == {}
    assert "semcache.cache" in result["imported"]  # type: ignore[operator]
    assert "semcache.plugins" in result["imported"]  # type: ignore[operator]
    assert result["leaked"] == []


def test_the_plot_extra_is_named_when_missing() -> None:
    # With the core's dependencies only, asking for the chart says which extra to install.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["matplotlib"] = None  # as if the plot extra were not installed
        from semcache import evaluation
        try:
            evaluation.require_matplotlib()
        except Exception as exc:  # a clear error, raised before any work is done
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "semcache-core[plot]" in done.stdout, done.stderr
