"""The ONNX Runtime backend: export once from the local weights, then run without torch.

The export traces the whole sentence-transformers pipeline (transformer, pooling,
normalisation) into one graph, so any pooling a model declares is kept. The int8 file is
the fp32 one with its weight matrices quantised per channel (dynamic quantisation).
Files are cached per user, keyed by the model's contents and this package's version; a
cached model loads with onnxruntime and tokenizers alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semcache.types import Matrix
from semcache_embed_hf._source import ModelSource, fingerprint
from semcache_embed_hf._window import Window, counting_tokenizer

__all__ = ["OnnxRunner", "exported_files"]

log = logging.getLogger("semcache.embed_hf")

# Bump when the exported graph or the files beside it change meaning.
_FORMAT = "1"
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_CPU_CHUNK = 8


def _local_folder(source: ModelSource) -> Path:
    if source.local:
        return Path(source.location)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.location, local_files_only=True))
    except Exception:  # not in the hub cache yet: fetch it (needs network access)
        return Path(snapshot_download(source.location))


def exported_files(source: ModelSource, cache_dir: Path, *, quantized: bool) -> Path:
    """The folder holding ``model.onnx`` (and ``model-int8.onnx``), exporting if needed."""
    from semcache_embed_hf import __version__

    folder = _local_folder(source)
    key = hashlib.sha256(
        f"{_FORMAT}\0{__version__}\0{source.name}\0{fingerprint(folder)}".encode()
    ).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source.name)[-60:]
    target = cache_dir / "onnx" / f"{safe}-{key}"
    target.mkdir(parents=True, exist_ok=True)
    with _lock(target / ".lock"):
        if not (target / "model.onnx").is_file():
            log.info("semcache: exporting %s to ONNX in %s", source.name, target)
            _export(folder, target)
        if quantized and not (target / "model-int8.onnx").is_file():
            log.info("semcache: quantising %s to int8", source.name)
            _quantize(target / "model.onnx", target / "model-int8.onnx")
    return target


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    # Several workers starting at once must not export over each other.
    try:
        import fcntl
    except ImportError:  # Windows: files are still written whole (rename), just maybe twice
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _replace_into(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _export(folder: Path, target: Path) -> None:
    import torch

    from semcache_embed_hf._torch import (
        embedding_dimension,
        load_sentence_transformer,
        max_tokens,
    )

    model = load_sentence_transformer(ModelSource(str(folder), folder.name, local=True), "cpu")
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("the ONNX backend needs a model with a fast (tokenizers) tokenizer")
    names = [n for n in _INPUTS if n in tokenizer.model_input_names]
    first = model[0]
    prompt = None
    if getattr(model, "default_prompt_name", None):
        prompt = model.prompts.get(model.default_prompt_name)
    meta = {
        "format": _FORMAT,
        "inputs": names,
        "dimension": embedding_dimension(model),
        "max_length": max_tokens(model),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "lowercase": bool(getattr(first, "do_lower_case", False)),
        "prompt": prompt,
    }

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features = dict(zip(names, tensors, strict=True))
            return self.model(features)["sentence_embedding"]  # type: ignore[no-any-return]

    sample = tokenizer(
        ["a short question", "a somewhat longer question that needs more tokens"],
        padding=True,
        return_tensors="pt",
    )
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"sentence_embedding": {0: "batch"}}

    def write_model(path: Path) -> None:
        with torch.no_grad(), _quiet_export():
            torch.onnx.export(
                Pipeline().eval(),
                tuple(sample[n] for n in names),
                str(path),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes=axes,
                opset_version=_OPSET,
                dynamo=False,  # the tracing exporter needs no onnxscript and handles BERT-likes
            )

    _replace_into(target / "tokenizer.json", lambda p: backend.save(str(p)))
    _replace_into(target / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    _replace_into(target / "model.onnx", write_model)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        # Tracing warnings about Python-side shape checks: shapes are dynamic axes here.
        warnings.simplefilter("ignore")
        yield


class _DropHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(path: Path) -> None:
        # Per-channel weights, matrix products with constant weights only: measured on
        # QQP pairs this halves the similarity error of the per-tensor default.
        hint = _DropHint()
        logging.getLogger().addFilter(hint)
        try:
            quantize_dynamic(
                str(source),
                str(path),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                extra_options={"MatMulConstBOnly": True},
            )
        finally:
            logging.getLogger().removeFilter(hint)

    _replace_into(target, write)


_WANTED = {"cuda": "CUDAExecutionProvider", "mps": "CoreMLExecutionProvider"}
_INSTALL = {"cuda": "pip install 'semcache-embed-hf[gpu]' (onnxruntime-gpu)"}


def _providers(device: str) -> list[Any]:
    import onnxruntime as ort

    kind, _, index = device.partition(":")
    wanted = _WANTED.get(kind)
    if wanted is None:
        return ["CPUExecutionProvider"]
    if wanted not in ort.get_available_providers():
        hint = _INSTALL.get(kind)
        log.warning(
            "semcache: %s is not available to onnxruntime %s; running on CPU%s",
            wanted,
            ort.__version__,
            f" (for {device}: {hint})" if hint else "",
        )
        return ["CPUExecutionProvider"]
    if index:
        return [(wanted, {"device_id": int(index)}), "CPUExecutionProvider"]
    return [wanted, "CPUExecutionProvider"]


class OnnxRunner:
    """Runs one exported model. Several threads may call it at once: they share the
    session (``InferenceSession.run`` is thread-safe) and the tokenizer (encoding only
    reads it), each call using ``threads`` threads of its own."""

    def __init__(
        self,
        source: ModelSource,
        *,
        quantized: bool,
        device: str,
        threads: int,
        batch_size: int,
        cache_dir: Path,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = exported_files(source, cache_dir, quantized=quantized)
        meta = json.loads((folder / "meta.json").read_text())
        self.inputs: list[str] = meta["inputs"]
        self.dimension: int = meta["dimension"]
        self.pad_id: int = meta["pad_id"]
        self.lowercase: bool = meta["lowercase"]
        self.prompt: str | None = meta["prompt"]
        self.max_tokens: int = meta["max_length"]
        # int8 runs one text at a time: dynamic quantisation scales activations over the
        # whole input, so a row would depend on its batch-mates (cosine 0.985 measured).
        # It costs little: within 15% of chunks of 8 on CPU, measured.
        self.one_by_one = quantized
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # padded per sorted chunk below
        self.tokenizer.enable_truncation(self.max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning workers would burn the core another process needs; see the README.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model_file = folder / ("model-int8.onnx" if quantized else "model.onnx")
        providers = _providers(device)
        self.session = ort.InferenceSession(str(model_file), options, providers=providers)
        self.providers: list[str] = self.session.get_providers()
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in self.providers:
            # onnxruntime itself drops a provider whose libraries fail to load (a CUDA
            # build without its CUDA or cuDNN), with no error: say so.
            log.warning(
                "semcache: onnxruntime could not start %s for device %s; running on %s",
                wanted,
                device,
                ", ".join(self.providers),
            )
        # On CPU, length-sorted chunks of 8 measured faster than 1 or 32 (attention grows
        # with the padded length squared, and wider matrix products gain little). What
        # counts is where the session runs, not the device asked for.
        on_cpu = self.providers[0] == "CPUExecutionProvider"
        self.batch_size = min(batch_size, _CPU_CHUNK) if on_cpu else batch_size

    def window(self, max_chars: int) -> Window:
        """The model's input window, counted with a copy of its tokenizer."""
        return Window(
            counting_tokenizer(self.tokenizer),
            self.max_tokens,
            max_chars=max_chars,
            prompt=self.prompt,
            lowercase=self.lowercase,
        )

    def __call__(self, texts: Sequence[str]) -> Matrix:
        prepared = list(texts)
        if self.prompt:
            prepared = [self.prompt + t for t in prepared]
        if self.lowercase:
            prepared = [t.lower() for t in prepared]
        encodings = self.tokenizer.encode_batch(prepared)
        out = np.empty((len(prepared), self.dimension), dtype=np.float32)
        if self.one_by_one:
            for i, enc in enumerate(encodings):
                out[i] = self._run([enc])[0]
            return out
        # Shortest first, so each chunk pads to a similar length.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._run([encodings[i] for i in chunk])
        return out

    def _run(self, encodings: list[Any]) -> Matrix:
        width = max(len(enc.ids) for enc in encodings)
        shape = (len(encodings), width)
        feed = {
            "input_ids": np.full(shape, self.pad_id, dtype=np.int64),
            "attention_mask": np.zeros(shape, dtype=np.int64),
            "token_type_ids": np.zeros(shape, dtype=np.int64),
        }
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            feed["input_ids"][row, :n] = enc.ids
            feed["attention_mask"][row, :n] = 1
            feed["token_type_ids"][row, :n] = enc.type_ids
        result: Matrix = self.session.run(None, {k: feed[k] for k in self.inputs})[0]
        return result
