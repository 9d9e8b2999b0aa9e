"""Every workspace distribution is packaged the same way.

First-party requirements all read ``NAME>=X.Y.Z,<X.(Y+1)`` with the member's version (a
0.x minor release may break, so a release of one package never pulls an incompatible
sibling); each import package ships ``py.typed``; each plugin registers its entry points
in group ``semcache`` under ``KIND.NAME``, pointing at a module it ships.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
KINDS = ("embedder", "vector_store", "response_store", "verifier", "judge", "settings")


def _project(folder: Path) -> dict[str, Any]:
    with (folder / "pyproject.toml").open("rb") as fh:
        project: dict[str, Any] = tomllib.load(fh)["project"]
    return project


MEMBERS = {_project(p)["name"]: Version(_project(p)["version"]) for p in PACKAGES}


def _pin(version: Version) -> str:
    """``>=0.1.0,<0.2`` for 0.x (a minor release may break), ``>=1.2.0,<2`` after."""
    upper = f"0.{version.minor + 1}" if version.major == 0 else str(version.major + 1)
    return f">={version},<{upper}"


def _is_plugin(name: str) -> bool:
    return name == "semcache-core" or (
        name.startswith(("semcache-embed-", "semcache-store-", "semcache-judge-"))
        and name != "semcache-embed-http"
    )


def _requirements(project: dict[str, Any]) -> list[str]:
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return lines


def _import_dir(folder: Path) -> Path:
    (package,) = [p for p in (folder / "src").iterdir() if (p / "__init__.py").is_file()]
    return package


def test_the_workspace_is_found() -> None:
    assert {"semcache-core", "semcache-embed-http", "semcache-proxy"} <= set(MEMBERS)


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: p.name)
def test_first_party_requirements_use_one_pin_form(folder: Path) -> None:
    project = _project(folder)
    for line in _requirements(project):
        req = Requirement(line)
        if req.name not in MEMBERS:
            continue
        expected = f"{req.name}{_pin(MEMBERS[req.name])}"
        bare = re.sub(r"\[.*?\]", "", line)  # extras may be asked for; the pin is the same
        assert bare == expected, f"{project['name']}: {line!r} should read {expected!r}"


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: p.name)
def test_each_package_ships_py_typed(folder: Path) -> None:
    package = _import_dir(folder)
    assert (package / "py.typed").is_file()
    (target,) = _project_wheel_packages(folder)
    assert (folder / target) == package


def _project_wheel_packages(folder: Path) -> list[str]:
    with (folder / "pyproject.toml").open("rb") as fh:
        config = tomllib.load(fh)
    packages: list[str] = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: p.name)
def test_plugins_register_in_the_semcache_group(folder: Path) -> None:
    project = _project(folder)
    group = project.get("entry-points", {}).get("semcache", {})
    if not _is_plugin(project["name"]):
        # An adapter may declare its own settings group, and nothing else.
        others = [name for name in group if not name.startswith("settings.")]
        assert others == [], f"{project['name']} is not a plugin"
        return
    assert group, f"{project['name']} registers no entry point in group 'semcache'"
    package = _import_dir(folder)
    for name, target in group.items():
        kind, _, plugin = name.partition(".")
        assert kind in KINDS and plugin, f"entry point {name!r} is not KIND.NAME"
        module = target.partition(":")[0]
        assert module.split(".")[0] == package.name
        path = folder / "src" / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), target
