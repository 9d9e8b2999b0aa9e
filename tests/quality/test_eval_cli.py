"""`semcache eval`: tables, JSON, sweep and chart, on the model-free test embedder."""

import json
import sys
from pathlib import Path

import pytest

from semcache.cli import main

from .conftest import TINY

HASH = ["--embedder", "testing-hash"]


@pytest.fixture(autouse=True)
def _clean_env(clean_cache_env: None) -> None:
    """No SEMANTIC_CACHE_* setting of the shell changes what is measured here."""


def test_report_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(TINY), *HASH, "--verifier", "none", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pairs: 7" in out
    assert "verifier: none" in out
    overall = next(line for line in out.splitlines() if line.startswith("overall"))
    assert overall.split()[1:] == ["7", "4", "4", "0.571", "0.750", "0.750", "0.333"]
    assert "chat" in out and "unrelated" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "eval",
                str(TINY),
                *HASH,
                "--verifier",
                "none",
                "--json",
                "--quiet",
                "--sweep",
                "0.5,0.9",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["precision"] == 0.75
    assert report["overall"]["false_hit_rate"] == pytest.approx(0.3333, abs=1e-4)
    assert [p["threshold"] for p in report["sweep"]] == [0.5, 0.9]
    assert report["by_category"]["plain"]["false_hits"] == 1


def test_sweep_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "pr.png"
    traps = Path(__file__).resolve().parents[1] / "data" / "traps.jsonl"
    code = main(
        [
            "eval",
            str(traps),
            *HASH,
            "--limit",
            "80",
            "--sample",
            "--sweep",
            "--plot",
            str(chart),
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "raw precision" in out
    assert len([line for line in out.splitlines() if line.strip().startswith("0.")]) == 30
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_plot_implies_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "c.png"
    assert main(["eval", str(TINY), *HASH, "--plot", str(chart), "--quiet"]) == 0
    assert chart.exists()
    assert "raw precision" in capsys.readouterr().out


def test_bad_input_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x"}\n')
    assert main(["eval", str(bad), *HASH]) == 2
    assert "missing b, same_answer" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope.jsonl"), *HASH]) == 2
    assert main(["eval", str(TINY), *HASH, "--sweep", "0.9:0.1:0.1"]) == 2


def test_other_commands_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--table"]) == 0
    assert "SEMANTIC_CACHE_CONTEXT_MODE" in capsys.readouterr().out


def test_plot_without_matplotlib_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    chart = tmp_path / "c.png"
    assert main(["eval", str(TINY), *HASH, "--plot", str(chart), "--quiet"]) == 2
    assert "semcache-core[plot]" in capsys.readouterr().err
    assert not chart.exists()


def _crowd_file(tmp_path: Path) -> Path:
    # p1's new request is p2's cached one: in one partition, p1 is served p2's answer.
    # p3 caches the same request as p2: one entry answers both, and that is no mix-up.
    rows = [
        {
            "id": "p1",
            "a": "How tall is the Eiffel tower?",
            "b": "Best pizza in Naples",
            "same_answer": False,
        },
        {"id": "p2", "a": "Best pizza in Naples", "b": "best pizza in naples", "same_answer": True},
        {"id": "p3", "a": "Best pizza in Naples", "b": "BEST pizza in Naples", "same_answer": True},
    ]
    path = tmp_path / "crowd.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_crowded_counts_answers_served_from_another_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_crowd_file(tmp_path))
    assert main(["eval", path, *HASH, "--verifier", "none", "--json", "--quiet"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert (alone["overall"]["true_hits"], alone["overall"]["false_hits"]) == (2, 0)
    assert alone["crowded"] is False and alone["foreign_hits"] == []

    assert main(["eval", path, *HASH, "--verifier", "none", "--crowded", "--json", "--quiet"]) == 0
    crowded = json.loads(capsys.readouterr().out)
    assert crowded["foreign_hits"] == ["p1"]
    # Another pair's answer is a wrong answer: a false hit, listed above.
    assert (crowded["overall"]["true_hits"], crowded["overall"]["false_hits"]) == (2, 1)

    assert main(["eval", path, *HASH, "--verifier", "none", "--crowded", "--quiet"]) == 0
    assert "served another pair's answer: 1 (p1)" in capsys.readouterr().out


def test_crowded_refuses_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_crowd_file(tmp_path))
    assert main(["eval", path, *HASH, "--crowded", "--sweep", "0.5,0.9", "--quiet"]) != 0
    assert "crowded" in capsys.readouterr().err
