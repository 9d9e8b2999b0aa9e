"""The README and the documentation pages stay true: links resolve, named tests exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ._site import DOCS, ROOT, python_blocks

README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    return [link for link in links if not re.match(r"[a-z]+:", link)]


def test_readme_stays_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first_block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert first_block
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["bash scripts/start.sh", "bash scripts/test.sh"]


def test_ci_runs_exactly_the_test_script() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert [line for line in lines if line.startswith("bash ")] == ["bash scripts/test.sh"]


def test_readme_links_reach_the_docs_pages() -> None:
    links = relative_links(README)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        target = (ROOT / link.split("#")[0]).resolve()
        assert target.exists(), f"README links to {link}, which does not exist"


def test_every_docs_page_is_linked_from_the_readme_or_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        rel = page.relative_to(DOCS).as_posix()
        assert rel in nav, f"docs/{rel} is not in mkdocs.yml's nav"


def named_tests(path: Path) -> set[str]:
    return set(re.findall(r"`(tests/[\w/]+\.py::\w+)(?:\[[^\]]*\])?`", path.read_text()))


def defined_tests(file: Path) -> set[str]:
    tree = ast.parse(file.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


@pytest.mark.parametrize("path", [README, DOCS / "guarantees.md", DOCS / "quality.md"])
def test_every_test_a_promise_names_exists(path: Path) -> None:
    for ref in sorted(named_tests(path)):
        file, name = ref.split("::")
        assert (ROOT / file).is_file(), f"{path.name} names {ref}: no such file"
        assert name in defined_tests(ROOT / file), f"{path.name} names {ref}: no such test"


def test_readme_guarantees_name_a_test_for_each_promise() -> None:
    section = README.read_text().split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    promises = re.split(r"\n- ", section)[1:]
    assert len(promises) >= 8
    for promise in promises:
        assert re.search(r"`tests/\S+::\w+", promise), f"no test named for: {promise[:60]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_python_examples_parse(page: Path) -> None:
    for block in python_blocks(page):
        # top-level `async with` examples are fine in a REPL (python -m asyncio)
        compile(block, str(page), "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
