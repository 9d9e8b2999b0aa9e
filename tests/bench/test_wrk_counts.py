"""The wrk script counts another cache's answers by the header names it is given.

A small real HTTP server answers like the seed does (``X-Cache: HIT`` or ``MISS``,
``X-Cache-Similarity``, names in mixed case): exact repeats at similarity 1, paraphrases
below it, and misses, in turn. wrk runs the generated script against it for a second.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from benchmarks.wrk import WRK, run_wrk, write_script

pytestmark = pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk)")

_ANSWERS = {
    b"exact": (("X-Cache", "HIT"), ("X-Cache-Similarity", "1.000000")),
    b"paraphrase": (("X-Cache", "HIT"), ("X-Cache-Similarity", "0.973237")),
    b"miss": (("X-Cache", "MISS"),),
}


class _SeedLike(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        for name, value in _ANSWERS[body]:
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def seed_like() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SeedLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hits_and_semantic_hits_counted_by_the_given_headers(
    seed_like: str, tmp_path: Path
) -> None:
    script = write_script(
        tmp_path / "mix.lua",
        [(b"exact", False), (b"paraphrase", True), (b"miss", False)],
        request_path="/v1/chat/completions",
        headers={"Content-Type": "application/json"},
        cache_header="X-Cache",
        similarity_header="X-Cache-Similarity",
    )
    result = run_wrk(seed_like, script, connections=1, duration=1)

    assert result["requests"] >= 3
    assert result["non_200"] == 0
    assert result["others"] == 0  # every answer carried the header, whatever its case
    assert result["hits"] + result["misses"] == result["requests"]
    # One request in three of each kind, in turn: at most one apart at the end of the run.
    exact = result["hits"] - result["semantic_hits"]
    assert abs(exact - result["semantic_hits"]) <= 1
    assert abs(result["misses"] - result["semantic_hits"]) <= 1
    assert result["hits_per_second"] == pytest.approx(
        result["hits"] / (result["duration_us"] / 1e6)
    )
