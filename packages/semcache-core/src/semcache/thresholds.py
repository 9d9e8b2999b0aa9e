"""Default similarity thresholds per known embedding model."""

from __future__ import annotations

__all__ = ["FALLBACK_THRESHOLD", "MODEL_THRESHOLDS", "default_threshold"]

FALLBACK_THRESHOLD = 0.9
"""For models with no measured default: conservative, favouring precision."""

MODEL_THRESHOLDS: dict[str, float] = {
    # qqp_dev, all 71,805 pairs, default verifier: precision 0.823, recall 0.400
    # (similarity alone: 0.733 / 0.591). Trap set: none of 264 traps served.
    # torch and fp32 ONNX (the default on CPU) share this id: their vectors agree to 1e-6.
    "sentence-transformers/all-MiniLM-L6-v2": 0.85,
    # int8 similarities run about 0.01 low: 0.84 keeps torch's recall at 0.85
    # (2,000 qqp_dev pairs, python -m benchmarks.embedding's quality check).
    "sentence-transformers/all-MiniLM-L6-v2@onnx-int8": 0.84,
    # 4,000 qqp_dev pairs (sampled, seed 123), default verifier: precision 0.859, recall
    # 0.411 (0.9: 0.870 / 0.367). Trap set: 1 of 264 traps served. About 5x the cost of
    # all-MiniLM-L6-v2 per text on a CPU (docs/quality.md, "A larger model").
    "sentence-transformers/all-mpnet-base-v2": 0.85,
}
"""Measured defaults, keyed by model name (see the README's hit-quality section)."""


def default_threshold(model_id: str) -> float:
    """The tuned threshold for the model in ``model_id``, else :data:`FALLBACK_THRESHOLD`.

    Embedder model ids may carry a suffix (``...@onnx-int8``, ``...:dim=256``); the
    longest known model name the id starts with wins.
    """
    best = ""
    for name in MODEL_THRESHOLDS:
        if (model_id == name or model_id.startswith(name)) and len(name) > len(best):
            best = name
    return MODEL_THRESHOLDS[best] if best else FALLBACK_THRESHOLD
