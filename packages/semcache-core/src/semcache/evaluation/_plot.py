"""The threshold chart; matplotlib is optional (``pip install 'semcache-core[plot]'``)."""

from __future__ import annotations

from pathlib import Path

from semcache.errors import EvaluationError
from semcache.evaluation._report import Report, pct

__all__ = ["plot_report", "require_matplotlib"]


def require_matplotlib() -> None:
    """Raise a clear error when the chart's optional dependency is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EvaluationError(
            "--plot needs matplotlib: pip install 'semcache-core[plot]'"
        ) from None


def plot_report(report: Report, path: str | Path) -> None:
    """Precision, recall and false-hit rate against the threshold, with and without the
    verifier (needs matplotlib: ``pip install 'semcache-core[plot]'``)."""
    if not report.sweep:
        raise EvaluationError("a chart needs a threshold sweep")
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.threshold for p in report.sweep]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    series = [
        (
            "precision",
            "#1f77b4",
            [p.verified.precision for p in report.sweep],
            [p.raw.precision for p in report.sweep],
        ),
        (
            "recall",
            "#2ca02c",
            [p.verified.recall for p in report.sweep],
            [p.raw.recall for p in report.sweep],
        ),
        (
            "false-hit rate",
            "#d62728",
            [p.verified.false_hit_rate for p in report.sweep],
            [p.raw.false_hit_rate for p in report.sweep],
        ),
    ]
    for name, color, with_verifier, raw in series:
        ax.plot(xs, with_verifier, color=color, linewidth=2.2, label=f"{name} (verifier)")
        ax.plot(
            xs,
            raw,
            color=color,
            linewidth=1.4,
            linestyle="--",
            alpha=0.8,
            label=f"{name} (similarity only)",
        )
    ax.axvline(report.threshold, color="0.35", linewidth=1, linestyle=":")
    ax.annotate(
        f"threshold {report.threshold:.2f}\nprecision {pct(report.overall.precision)}\n"
        f"recall {pct(report.overall.recall)}",
        xy=(report.threshold, 0.5),
        xytext=(6, 0),
        textcoords="offset points",
        fontsize=9,
        color="0.2",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.8"},
    )
    ax.set_xlim(min(xs), max(xs))
    ax.set_ylim(-0.02, 1.03)  # keep a rate of exactly 0 or 1 visible
    ax.set_xlabel("similarity threshold")
    ax.set_ylabel("rate")
    ax.grid(True, alpha=0.3)
    ax.set_title(
        f"Hit quality on {Path(report.source).name} ({report.overall.pairs} pairs)\n"
        f"{report.model_id}, verifier: {report.verifier}",
        fontsize=11,
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
