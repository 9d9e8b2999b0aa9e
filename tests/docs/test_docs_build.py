"""The documentation site builds with ``mkdocs build --strict``, offline.

``--strict`` turns every warning into a failure: a broken link or anchor, a page missing
from the navigation, a docstring mkdocstrings cannot render, an unknown settings group.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._site import ROOT

pytestmark = pytest.mark.slow


def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    # No proxy reachable: a build that tried to fetch anything would fail or hang here.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[var] = "http://127.0.0.1:9"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr

    settings_page = (site / "settings" / "index.html").read_text()
    assert "SEMANTIC_CACHE_THRESHOLD" in settings_page
    assert "settings-table" not in settings_page  # every marker was replaced
    for page in ("adapters/proxy", "stores/pgvector", "stores/redis", "adapters/django"):
        assert "SEMANTIC_CACHE_" in (site / page / "index.html").read_text(), page
    # the API reference is generated from the docstrings
    reference = (site / "reference" / "semcache-core" / "index.html").read_text()
    assert "SemanticCache" in reference and "lookup" in reference
    # BENCHMARKS.md is included, not linked
    assert "wrk" in (site / "benchmarks" / "index.html").read_text()
    # nothing is fetched from the internet when the site is viewed
    for html in site.rglob("*.html"):
        text = html.read_text()
        assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text, html
