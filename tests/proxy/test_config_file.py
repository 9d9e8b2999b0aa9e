"""`semcache-proxy --config semcache.toml`: the documented example runs, bad files stop start-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from semcache import Settings
from semcache.config import parse_config
from semcache.http import RoutePolicy
from semcache_proxy import ProxySettings
from tests.support.polling import wait_until

from .processes import start_proxy, stop_proxy

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "config.md"


def documented_example() -> str:
    """The complete example of docs/config.md, as a reader would copy it."""
    text = PAGE.read_text()
    found = re.search(r"<!-- config-example:start -->\n```toml\n(.*?)```", text, re.S)
    assert found, "docs/config.md has no marked example"
    return found.group(1)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}


def test_the_documented_example_loads_with_every_part() -> None:
    config = parse_config(documented_example(), "semcache.toml")
    assert config.settings["proxy_upstream"] == "https://api.openai.com"
    assert config.settings["identity_headers"] == "X-Token"  # an array, joined
    assert [(r.path, r.mode) for r in config.routes] == [
        ("*/embeddings", "exact"),
        ("*/moderations", "off"),
        ("*/chat/completions", "semantic"),
    ]
    chat = config.routes[2]
    assert chat == RoutePolicy(
        "*/chat/completions",
        ttl=3600,
        threshold=0.8,
        tenant_headers=("x-org-id",),
        tenant_fields=("user", "metadata.team"),
    )
    assert config.upstreams == (("/ollama", "http://127.0.0.1:11434"),)
    assert config.prices["gpt-4o-mini"] == {"input": 0.15, "output": 0.6}


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "semcache.toml"
    path.write_text(documented_example())
    environ = {
        "SEMANTIC_CACHE_CONFIG": str(path),
        "SEMANTIC_CACHE_TTL": "60",
        "SEMANTIC_CACHE_PROXY_UPSTREAM": "http://127.0.0.1:9",
    }
    settings = Settings.from_env(environ)
    assert settings.ttl == 60  # the variable, not the file's 86400
    assert settings.threshold == 0.85  # the file, not the default
    assert settings.client_modes is True
    proxy = settings.group(ProxySettings)
    assert proxy.proxy_upstream == "http://127.0.0.1:9"  # a plugin group's variable wins too
    assert proxy.proxy_timeout == 300.0
    assert settings.routes == settings.config_file.routes
    # Code beats both.
    assert Settings.from_env(environ, ttl=5).ttl == 5


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("threshold = 0.9\nttl 3600\n", "invalid TOML: .*at line 2.*'ttl 3600'"),
        (
            "ttl = 3600\ntreshold = 0.9\n",
            r"line 2: treshold: unknown setting \(did you mean 'threshold'\?\)",
        ),
        (
            "# comment\nauth_mode = 'open'\n",
            "line 2: auth_mode: 'open' is invalid: expected one of partition",
        ),
        (
            '[[routes]]\npath = "*/embeddings"\n\n[[routes]]\npath = "*/chat/*"\nmode = "fuzzy"\n',
            r"line 6: routes\[1\]\.mode: expected one of semantic, exact, off \(got 'fuzzy'\)",
        ),
        (
            '[upstreams]\n"/a" = "http://a"\n"b" = "http://b"\n',
            "line 3: upstreams.b: a path prefix",
        ),
        (
            '[prices."gpt-4o"]\ninput = 1\noutput = -2\n',
            r"line 3: prices\.gpt-4o\.output: expected a number",
        ),
    ],
    ids=["syntax", "unknown-key", "bad-value", "bad-route", "bad-upstream", "bad-price"],
)
def test_an_invalid_file_stops_the_proxy_naming_the_line_and_the_key(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "semcache_proxy.cli", "--config", str(path), "--port", "1"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(f"semcache-proxy: {path}"), message
    assert re.search(where, message), message


def test_the_documented_example_serves_each_route_by_its_mode(
    upstream: str, fake, tmp_path: Path
) -> None:
    path = tmp_path / "semcache.toml"
    path.write_text(documented_example())
    env = clean_env()
    # The file names api.openai.com; the variable sends the proxy to the test upstream.
    env["SEMANTIC_CACHE_PROXY_UPSTREAM"] = upstream
    env["SEMANTIC_CACHE_ADMIN_TOKEN"] = "t"
    # loads the real all-MiniLM-L6-v2 model
    proc, url = start_proxy(
        None, env=env, ready_within=120, cwd=tmp_path, options=["--config", str(path)]
    )
    admin = {"Authorization": "Bearer t"}

    def stores() -> int:
        return httpx.get(url + "/_semcache/admin/stats", headers=admin).json()["stores"]

    try:
        with httpx.Client(base_url=url, timeout=30) as client:

            def chat(question: str) -> httpx.Response:
                body = {"model": "demo", "messages": [{"role": "user", "content": question}]}
                return client.post("/v1/chat/completions", json=body)

            def embed(text: str) -> httpx.Response:
                return client.post("/echo/v1/embeddings", json={"model": "e", "input": text})

            # semantic: a paraphrase is a hit
            first = chat("How do I reset my password?")
            assert first.headers["x-semcache"] == "miss"
            wait_until(lambda: stores() >= 1, timeout=10, what="the chat answer stored")
            para = chat("What are the steps to reset my password?")
            assert para.headers["x-semcache"] == "hit", para.headers
            assert para.json() == first.json()

            # exact: the same text is a hit, a paraphrase is not
            assert embed("How do I reset my password?").headers["x-semcache"] == "miss"
            wait_until(lambda: stores() >= 2, timeout=10, what="the vectors stored")
            assert embed("How do I reset my password?").headers["x-semcache"] == "hit"
            near = embed("What are the steps to reset my password?")
            assert near.headers["x-semcache"] == "miss"

            # off: untouched, never cached
            calls = fake.calls
            for _ in range(2):
                moderation = client.post(
                    "/echo/v1/moderations", json={"model": "m", "input": "How do I reset it?"}
                )
                assert moderation.status_code == 200
                assert "x-semcache" not in moderation.headers
            assert fake.calls == calls + 2
    finally:
        stop_proxy(proc, within=20)
