"""The default backend is `auto`: ONNX Runtime on CPU where it is installed, torch otherwise."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semcache import Settings, plugins
from semcache.thresholds import default_threshold
from semcache_embed_hf import DEFAULT_MODEL, HuggingFaceEmbedder, resolve_backend
from tests.support.missing_modules import without_modules


async def test_default_runs_onnx_on_cpu_with_torchs_id_and_threshold(
    hf_onnx: HuggingFaceEmbedder, hf_torch: HuggingFaceEmbedder, caplog: pytest.LogCaptureFixture
):
    settings = Settings(embedder_type="huggingface")
    assert settings.embedder_backend == "auto"
    with caplog.at_level(logging.INFO, logger="semcache.embed_hf"):
        # the per-user cache is the session's (conftest): hf_onnx exported into it
        embedder = await asyncio.to_thread(plugins.create_embedder, settings)
    try:
        assert isinstance(embedder, HuggingFaceEmbedder)
        assert embedder.backend == "onnx"
        chosen = [r.getMessage() for r in caplog.records if "backend" in r.getMessage()]
        assert chosen == [
            "semcache: embedder backend onnx (auto: ONNX Runtime is installed and the device is cpu)"
        ]
        # fp32 ONNX gives torch's vectors: the same id, index and measured threshold
        assert embedder.model_id == hf_torch.model_id == DEFAULT_MODEL
        assert default_threshold(embedder.model_id) == default_threshold(hf_torch.model_id)
        texts = ["How do I reset my password?", "what's the weather in Paris tomorrow"]
        got, want = await embedder.embed(texts), await hf_torch.embed(texts)
        assert np.allclose(got, want, atol=1e-5)
        # the same parallel runners and start-up calibration as torch
        assert embedder.max_concurrency == hf_torch.max_concurrency
        assert embedder.preferred_batch_size is not None and embedder.calibration
    finally:
        await embedder.aclose()


def test_auto_runs_torch_on_a_gpu_and_names_are_kept():
    assert resolve_backend("auto", "cuda")[0] == "torch"
    assert resolve_backend("auto", "cuda:1")[0] == "torch"
    assert resolve_backend("auto", "mps")[0] == "torch"
    for name in ("torch", "onnx", "onnx-int8"):
        assert resolve_backend(name, "cpu") == (name, "asked for")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("tensorflow", "cpu")


async def test_explicit_torch_still_runs_torch(hf_torch: HuggingFaceEmbedder):
    settings = Settings(embedder_type="huggingface", embedder_backend="torch")
    embedder = await asyncio.to_thread(plugins.create_embedder, settings)
    try:
        assert isinstance(embedder, HuggingFaceEmbedder)
        assert embedder.backend == "torch" and embedder.model_id == hf_torch.model_id
        assert np.allclose(await embedder.embed(["hi"]), await hf_torch.embed(["hi"]), atol=1e-6)
    finally:
        await embedder.aclose()


async def test_auto_runs_torch_when_the_export_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would go")  # say, a read-only home
    with caplog.at_level(logging.WARNING, logger="semcache.embed_hf"):
        embedder = await asyncio.to_thread(HuggingFaceEmbedder, cache_dir=blocked, calibrate=False)
    try:
        assert embedder.backend == "torch"
        assert any("cannot run" in r.getMessage() for r in caplog.records)
        assert (await embedder.embed(["hi"])).shape == (1, 384)
    finally:
        await embedder.aclose()
    # asked for by name, the same failure is an error, not a silent switch
    with pytest.raises(Exception, match="onnx backend"):
        HuggingFaceEmbedder(backend="onnx", cache_dir=blocked, calibrate=False)


_PROBE = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from semcache import Settings
from semcache.errors import EmbeddingModelError
from semcache_embed_hf import HuggingFaceEmbedder
embedder = HuggingFaceEmbedder.from_settings(Settings())
try:
    HuggingFaceEmbedder(backend="onnx", calibrate=False)
    explicit = "loaded"
except EmbeddingModelError as exc:
    explicit = str(exc)
print(json.dumps({"backend": embedder.backend, "model_id": embedder.model_id,
                  "explicit_onnx": explicit}))
"""


def test_without_onnxruntime_the_default_runs_torch(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMANTIC_CACHE_")}
    env = without_modules(env, ["onnxruntime"], tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "torch"
    assert result["model_id"] == DEFAULT_MODEL
    assert (
        "semcache: embedder backend torch (auto: onnxruntime is not installed; "
        "pip install 'semcache-embed-hf[cpu]' for ONNX Runtime)"
    ) in done.stderr
    # asked for by name, ONNX without onnxruntime is an error that says what to install
    assert "pip install 'semcache-embed-hf[cpu]'" in result["explicit_onnx"]
