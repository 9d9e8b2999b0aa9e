from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from pathlib import Path

import numpy as np
import pytest

from semcache import (
    EmbeddingError,
    EmbeddingModelError,
    MicroBatchingEmbedder,
    SemanticCache,
    Settings,
    plugins,
)
from semcache.testing.contracts import EmbedderContract
from semcache.thresholds import default_threshold
from semcache_embed_hf import DEFAULT_MODEL, HuggingFaceEmbedder
from semcache_embed_hf._source import fingerprint, resolve_source

from .conftest import Borrowed

# (question, paraphrase, unrelated question)
TRIPLES = [
    (
        "How do I reset my password?",
        "What are the steps to reset my password?",
        "What is the capital of France?",
    ),
    (
        "How can I cancel my subscription?",
        "What is the way to cancel my subscription?",
        "How do I bake sourdough bread?",
    ),
    (
        "What is the best way to learn Python?",
        "How should I start learning Python?",
        "How many moons does Jupiter have?",
    ),
    ("Why is the sky blue?", "What makes the sky look blue?", "How do I change a flat tyre?"),
]


class TestTorchContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, hf_torch: HuggingFaceEmbedder) -> HuggingFaceEmbedder:
        return hf_torch


class TestOnnxContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, hf_onnx: HuggingFaceEmbedder) -> HuggingFaceEmbedder:
        return hf_onnx


class TestOnnxInt8Contract(EmbedderContract):
    @pytest.fixture
    def embedder(self, hf_int8: HuggingFaceEmbedder) -> HuggingFaceEmbedder:
        return hf_int8


class TestMicroBatchedContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, hf_torch: HuggingFaceEmbedder) -> MicroBatchingEmbedder:
        return MicroBatchingEmbedder(Borrowed(hf_torch), max_batch=32, window_ms=2)


@pytest.fixture(params=["torch", "onnx", "onnx-int8"])
def any_backend(
    request: pytest.FixtureRequest,
    hf_torch: HuggingFaceEmbedder,
    hf_onnx: HuggingFaceEmbedder,
    hf_int8: HuggingFaceEmbedder,
) -> HuggingFaceEmbedder:
    return {"torch": hf_torch, "onnx": hf_onnx, "onnx-int8": hf_int8}[request.param]


async def test_paraphrases_score_above_unrelated_questions(any_backend: HuggingFaceEmbedder):
    for question, paraphrase, unrelated in TRIPLES:
        q, p, u = await any_backend.embed([question, paraphrase, unrelated])
        same, other = float(q @ p), float(q @ u)
        assert same > 0.7, (question, paraphrase, same)
        assert other < 0.4, (question, unrelated, other)
        assert same - other > 0.4


async def test_backends_agree(hf_torch, hf_onnx, hf_int8):
    texts = [t for triple in TRIPLES for t in triple] + ["word " * 400]  # past 256 tokens
    ref = await hf_torch.embed(texts)
    fp32 = await hf_onnx.embed(texts)
    int8 = await hf_int8.embed(texts)
    assert np.abs(fp32 - ref).max() < 1e-4
    assert (int8 * ref).sum(axis=1).min() > 0.97
    sims = lambda m: np.array([m[i] @ m[i + 1] for i in range(0, len(TRIPLES) * 3, 3)])  # noqa: E731
    assert np.abs(sims(int8) - sims(ref)).max() < 0.03


def test_model_ids_name_what_changes_vectors(hf_torch, hf_onnx, hf_int8):
    assert hf_torch.model_id == DEFAULT_MODEL == "sentence-transformers/all-MiniLM-L6-v2"
    assert hf_onnx.model_id == hf_torch.model_id  # same vectors, so the same index
    assert hf_int8.model_id == "sentence-transformers/all-MiniLM-L6-v2@onnx-int8"
    for e in (hf_torch, hf_onnx, hf_int8):
        assert e.dimension == 384
    # The model's tuned default reaches every backend; int8 similarities run about
    # 0.01 low, so it has its own, slightly lower, default.
    assert default_threshold(hf_onnx.model_id) == default_threshold(DEFAULT_MODEL) == 0.85
    assert default_threshold(hf_int8.model_id) == 0.84


def test_default_model_loads_from_the_weights_package():
    source = resolve_source(None)
    assert source.local and source.name == DEFAULT_MODEL
    assert Path(source.location, "model.safetensors").is_file()
    assert resolve_source("all-MiniLM-L6-v2") == source
    assert resolve_source(source.location) == source  # the same folder given as a path


def test_local_folders_are_named_by_their_contents(tmp_path: Path):
    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for folder, byte in ((a, b"\x01"), (b, b"\x02")):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "weights.bin").write_bytes(byte * 10_000_000)  # same size, other weights
    ida, idb = resolve_source(str(a)).name, resolve_source(str(b)).name
    assert ida.startswith("local/model/") and idb.startswith("local/model/")
    assert ida != idb
    assert resolve_source(str(a)).name == ida  # stable
    assert fingerprint(a) == fingerprint(a)


async def test_dimensions_truncate_and_renormalise(onnx_cache: Path, hf_onnx):
    short = HuggingFaceEmbedder(backend="onnx", dimensions=128, cache_dir=onnx_cache)
    try:
        assert short.dimension == 128
        assert short.model_id == "sentence-transformers/all-MiniLM-L6-v2:dim=128"
        m = await short.embed(["How do I reset my password?"])
        full = await hf_onnx.embed(["How do I reset my password?"])
        assert m.shape == (1, 128)
        assert abs(float(np.linalg.norm(m[0])) - 1) < 1e-5
        cut = full[0, :128] / np.linalg.norm(full[0, :128])
        assert np.allclose(m[0], cut, atol=1e-5)
    finally:
        await short.aclose()
    with pytest.raises(ValueError, match="dimensions"):
        HuggingFaceEmbedder(backend="onnx", dimensions=1000, cache_dir=onnx_cache)


async def test_closed_embedder_refuses_work(onnx_cache: Path):
    e = HuggingFaceEmbedder(backend="onnx-int8", cache_dir=onnx_cache)
    await e.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await e.embed(["hello"])


def test_bad_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        HuggingFaceEmbedder(backend="tensorflow")  # type: ignore[arg-type]


async def test_plugin_builds_it_from_settings(hf_int8):
    settings = Settings(embedder_type="huggingface", embedder_backend="onnx-int8")
    embedder = await asyncio.to_thread(plugins.create_embedder, settings)
    try:
        assert isinstance(embedder, HuggingFaceEmbedder)
        assert embedder.model_id == hf_int8.model_id and embedder.threads == 1
        assert np.allclose(await embedder.embed(["hi"]), await hf_int8.embed(["hi"]), atol=1e-6)
    finally:
        await embedder.aclose()


async def test_semantic_hit_end_to_end(hf_torch):
    async with SemanticCache(embedder=Borrowed(hf_torch)) as cache:
        assert cache.threshold == default_threshold(DEFAULT_MODEL)
        await cache.store("How do I reset my password?", b"Settings > Account > Reset")
        hit = await cache.lookup("what are the steps to reset my password")
        assert hit is not None and hit.source == "semantic"
        assert hit.payload == b"Settings > Account > Reset"
        assert hit.similarity >= cache.threshold
        assert await cache.lookup("What is the capital of France?") is None


async def _concurrent_lookups(hf_torch: HuggingFaceEmbedder, batch_max_size: int) -> int:
    answers = {TRIPLES[0][0]: b"reset", TRIPLES[1][0]: b"cancel"}
    prefixes = [
        "",
        "hi, ",
        "hello, ",
        "hey, ",
        "please, ",
        "quick question: ",
        "so ",
        "ok, ",
        "question: ",
        "help: ",
        "one more thing: ",
        "also, ",
        "well, ",
        "urgent: ",
        "sorry, ",
        "excuse me, ",
    ]
    lookups = [(p + TRIPLES[i][1], answers[TRIPLES[i][0]]) for p in prefixes for i in (0, 1)]
    assert len(lookups) == 32
    # About batching and routing rows, not about where hits start: a low threshold and
    # no verifier (the two topics stay far apart, below 0.3).
    async with SemanticCache(
        embedder=Borrowed(hf_torch),
        batch_max_size=batch_max_size,
        threshold=0.7,
        verifier=None,
    ) as cache:
        for question, answer in answers.items():
            await cache.store(question, answer)
        before = hf_torch.calls
        hits = await asyncio.gather(*(cache.lookup(q) for q, _ in lookups))
        calls = hf_torch.calls - before
    for (question, answer), hit in zip(lookups, hits, strict=True):
        assert hit is not None, question
        assert hit.payload == answer, question  # each caller got its own row back
    return calls


async def test_micro_batching_feeds_the_model_batches(hf_torch):
    assert await _concurrent_lookups(hf_torch, batch_max_size=32) <= 2
    assert await _concurrent_lookups(hf_torch, batch_max_size=1) == 32  # unbatched baseline


MIN_MODEL_RUN_S = 1.0
"""The model call must take at least this long for a blocked loop to stand out."""


async def _loop_gaps_during(work: Awaitable[object]) -> tuple[list[float], float]:
    """The event loop's tick gaps (a 5 ms ticker) while ``work`` runs, up to its end,
    and its duration."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    last = loop.time()

    async def ticker() -> None:
        nonlocal last
        while True:
            await asyncio.sleep(0.005)
            now = loop.time()
            gaps.append(now - last)
            last = now

    tick = loop.create_task(ticker())
    started = time.perf_counter()
    await work
    took = time.perf_counter() - started
    gaps.append(loop.time() - last)  # a loop blocked to the end has ticked not at all
    tick.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tick
    return gaps, took


async def test_event_loop_keeps_ticking_while_the_model_runs(any_backend: HuggingFaceEmbedder):
    count = 256 if any_backend.backend == "torch" else 512
    while True:
        texts = [
            f"question {i}: how do I configure the thing number {i} on my device?"
            for i in range(count)
        ]
        gaps, took = await _loop_gaps_during(any_backend.embed(texts))
        if took >= MIN_MODEL_RUN_S:
            break
        count *= 2  # too quick to tell a blocked loop from a busy machine: a bigger batch
    # The model ran for `took` seconds in one call; a blocked loop would show one gap
    # that long, a free one ticks every 5 ms (plus scheduling noise on a busy machine,
    # which stays well under a quarter of the call).
    assert max(gaps) < took / 4, (max(gaps), took)
    assert len(gaps) > took / 0.005 / 4, (len(gaps), took)


def test_torch_threads_apply_in_the_model_thread(hf_torch):
    import torch

    # torch's thread count is per OS thread: what matters is the worker's.
    assert hf_torch._executor.submit(torch.get_num_threads).result() == hf_torch.threads == 1


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_model_that_cannot_load_is_a_model_error(tmp_path: Path, backend: str):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "README.md").write_text("no weights here")
    with pytest.raises(EmbeddingModelError, match="cannot load the embedding model") as info:
        HuggingFaceEmbedder(folder, backend=backend, cache_dir=tmp_path / "cache")  # type: ignore[arg-type]
    assert isinstance(info.value, EmbeddingError) and info.value.provider == "huggingface"
    assert info.value.status is None and info.value.__cause__ is not None


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:0", "CUDA"])
def test_unknown_device_is_refused(device: str):
    with pytest.raises(ValueError, match="device"):
        HuggingFaceEmbedder(device=device)  # type: ignore[arg-type]


def test_a_missing_gpu_is_named_as_the_device_not_the_model():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(EmbeddingModelError, match="sees no CUDA GPU") as info:
        HuggingFaceEmbedder(device="cuda")
    assert "SEMANTIC_CACHE_EMBEDDER_DEVICE=cpu" in str(info.value)
    assert "check the name or folder" not in str(info.value)


def test_onnx_asks_for_the_gpu_it_is_told(monkeypatch: pytest.MonkeyPatch):
    import onnxruntime as ort

    from semcache_embed_hf._onnx import _providers

    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: cuda)
    assert _providers("cpu") == ["CPUExecutionProvider"]
    assert _providers("cuda") == cuda
    assert _providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), cuda[1]]


def test_onnx_without_cuda_warns_and_runs_like_cpu(
    onnx_cache: Path, hf_onnx, caplog: pytest.LogCaptureFixture
):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime has CUDA here")
    with caplog.at_level("WARNING", logger="semcache.embed_hf"):
        e = HuggingFaceEmbedder(backend="onnx", device="cuda:0", cache_dir=onnx_cache)
    try:
        assert "CUDAExecutionProvider is not available" in caplog.text
        assert "semcache-embed-hf[gpu]" in caplog.text
        runner = e._run
        assert runner.providers == ["CPUExecutionProvider"]  # type: ignore[attr-defined]
        # where it really runs decides the chunking: CPU chunks, not the GPU's batch
        assert runner.batch_size == hf_onnx._run.batch_size == 8  # type: ignore[attr-defined]
    finally:
        e._executor.shutdown(wait=True)


def test_cpu_models_run_a_call_per_usable_core_with_a_measured_batch_size(hf_torch, hf_onnx):
    from semcache_embed_hf._embedder import CALIBRATION_SIZES, usable_cores

    for embedder in (hf_torch, hf_onnx):
        assert embedder.max_concurrency == usable_cores() // embedder.threads
        assert set(embedder.calibration) == set(CALIBRATION_SIZES)
        assert all(0 < c < 1 for c in embedder.calibration.values())
        assert embedder.preferred_batch_size in CALIBRATION_SIZES
        batching = MicroBatchingEmbedder(embedder, max_batch=32)
        assert batching.concurrency == embedder.max_concurrency
        assert batching.batch_limit == embedder.preferred_batch_size


@pytest.mark.parametrize("backend", ["torch", "onnx"])
async def test_parallel_calls_give_the_same_vectors(
    backend: str, hf_torch: HuggingFaceEmbedder, hf_onnx: HuggingFaceEmbedder, onnx_cache: Path
):
    embedder = {"torch": hf_torch, "onnx": hf_onnx}[backend]
    texts = [f"how do I reset my password number {i}" + " please" * (i % 5) for i in range(24)]
    one_by_one = np.vstack([await embedder.embed([t]) for t in texts])
    # Four workers sharing the model, batches of mixed sizes at once.
    parallel = HuggingFaceEmbedder(
        backend=backend,  # type: ignore[arg-type]
        workers=4,
        calibrate=False,
        cache_dir=onnx_cache,
    )
    try:
        assert parallel.max_concurrency == 4 and parallel.preferred_batch_size is None
        for _ in range(3):
            chunks = [texts[i : i + n] for i, n in zip(range(0, 24, 6), (1, 6, 3, 6), strict=True)]
            rows = await asyncio.gather(*(parallel.embed(c) for c in chunks))
            for chunk, start, got in zip(chunks, range(0, 24, 6), rows, strict=True):
                assert np.allclose(got, one_by_one[start : start + len(chunk)], atol=1e-5)
    finally:
        await parallel.aclose()


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        HuggingFaceEmbedder(workers=0)
