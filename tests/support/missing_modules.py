"""Run a Python subprocess as if some installed modules were not installed.

A ``sitecustomize`` on ``PYTHONPATH`` puts a finder first on ``sys.meta_path`` that
refuses the named top-level modules (and their submodules) before Python starts the
program, so ``python -m anything`` sees them missing, as on a machine without them.
``importlib.util.find_spec`` answers ``None`` for them, as it does for a module that
is not there (libraries probe optional dependencies that way and expect no error).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["without_modules"]

_SITECUSTOMIZE = """\
import importlib.util
import os
import sys

_MISSING = frozenset(filter(None, os.environ.get("SEMCACHE_TEST_MISSING", "").split(",")))


class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


_find_spec = importlib.util.find_spec


def _find_spec_missing(name, package=None):
    if name.partition(".")[0] in _MISSING:
        return None
    return _find_spec(name, package)


sys.meta_path.insert(0, _Missing())
importlib.util.find_spec = _find_spec_missing
"""


def without_modules(env: Mapping[str, str], modules: Iterable[str], folder: Path) -> dict[str, str]:
    """``env`` for a subprocess that cannot import ``modules`` (``folder``: any empty dir)."""
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    path = [str(folder), *filter(None, [env.get("PYTHONPATH")])]
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(path),
        "SEMCACHE_TEST_MISSING": ",".join(modules),
    }
