"""The sentence-transformers (PyTorch) runtime. Everything here runs in the worker thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from semcache.types import Matrix
from semcache_embed_hf._source import ModelSource
from semcache_embed_hf._window import Window, counting_tokenizer

__all__ = ["DeviceUnavailableError", "TorchRunner", "load_sentence_transformer", "max_tokens"]


class DeviceUnavailableError(RuntimeError):
    """torch cannot run on the device asked for (a CPU-only build, no GPU visible)."""


def check_torch_device(device: str) -> None:
    """Fail early, naming the device, rather than deep inside the model's loading."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = (
                f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            )
            raise DeviceUnavailableError(
                f"device {device!r} asked for, but torch {torch.__version__} ({build}) sees no CUDA GPU"
            )
        if index and int(index) >= count:
            raise DeviceUnavailableError(
                f"device {device!r} asked for, but torch sees {count} GPU(s)"
            )
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(
            f"device {device!r} asked for, but torch has no MPS support here"
        )


def load_sentence_transformer(source: ModelSource, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(source.location, device=device, local_files_only=source.local)
    model.eval()
    return model


def embedding_dimension(model: Any) -> int:
    # Renamed in sentence-transformers 5; the old name warns there.
    getter = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    dimension = getter()
    if not dimension:
        raise ValueError("the model does not report its embedding dimension")
    return int(dimension)


def max_tokens(model: Any) -> int:
    """Tokens of a text the model reads (its window); the tokenizer drops the rest."""
    return int(model.max_seq_length or model.tokenizer.model_max_length)


class TorchRunner:
    """Runs one sentence-transformers model. Several threads may call it at once: they
    share the weights (inference changes no state; ``encode`` runs without gradients),
    each with ``threads`` threads of its own."""

    def __init__(self, source: ModelSource, *, device: str, threads: int, batch_size: int) -> None:
        import torch

        self._torch = torch
        self.threads = threads
        self.batch_size = batch_size
        self._set_threads()
        check_torch_device(device)
        self.model = load_sentence_transformer(source, device)
        self.dimension = embedding_dimension(self.model)
        self.max_tokens = max_tokens(self.model)

    def _set_threads(self) -> None:
        # torch keeps its thread count per OS thread (OpenMP), so it is set here, in
        # the thread that runs the model, not in whichever thread built the embedder.
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)

    def window(self, max_chars: int) -> Window:
        """The model's input window, counted with a copy of its tokenizer."""
        prompt = getattr(self.model, "default_prompt_name", None)
        prompts = getattr(self.model, "prompts", None) or {}
        return Window(
            counting_tokenizer(self.model.tokenizer),
            self.max_tokens,
            max_chars=max_chars,
            prompt=prompts.get(prompt) if prompt else None,
        )

    def __call__(self, texts: Sequence[str]) -> Matrix:
        self._set_threads()
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)
