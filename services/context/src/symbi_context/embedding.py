"""The embedding port and the choice between its implementations.

:class:`Embedder` turns texts into L2-normalised float32 vectors (one row per text) and
batches internally. Implementations:

- :class:`~symbi_context.minilm.OnnxMiniLmEmbedder` — the default: all-MiniLM-L6-v2 (384-d)
  as an int8 ONNX model shipped in a PyPI package, run by onnxruntime; nothing downloaded.
- :class:`~symbi_context.openai_embedder.OpenAICompatibleEmbedder` — any provider speaking the
  OpenAI ``/embeddings`` API.
- :class:`~symbi_context.hashing.HashingEmbedder` — feature hashing; no semantics, only when
  explicitly configured (tests, tiny deployments).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from symbi_common.errors import ConfigError, InvalidArgument

from .openai_http import OpenAIEndpoint

__all__ = ["Embedder", "EmbedderKind", "EmbedderOptions", "build_embedder", "check_texts"]

MAX_TEXTS = 4096
MAX_TEXT_CHARS = 100_000


class Embedder(Protocol):
    """Texts in, unit vectors out."""

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    @property
    def model_id(self) -> str:
        """Identifies the model; vectors from different models never share a collection."""
        ...

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised row per text, in order; shape ``(len(texts), dimension)``."""
        ...

    async def aclose(self) -> None:
        """Release resources; idempotent."""
        ...


class EmbedderKind(enum.StrEnum):
    """Which embedder to build."""

    MINILM = "minilm"
    OPENAI = "openai"
    HASHING = "hashing"


@dataclass(frozen=True, slots=True)
class EmbedderOptions:
    """Embedder configuration (``[context] embedding_*`` keys in the service config)."""

    kind: EmbedderKind = EmbedderKind.MINILM
    batch_size: int = 32
    dimension: int = 384
    max_tokens: int = 256
    threads: int = 2
    endpoint: OpenAIEndpoint | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 1024:
            raise ConfigError(
                f"embedding batch_size={self.batch_size} is outside 1..1024", reason="BAD_OPTIONS"
            )
        if not 8 <= self.dimension <= 8192:
            raise ConfigError(
                f"embedding dimension={self.dimension} is outside 8..8192", reason="BAD_OPTIONS"
            )
        if self.kind is EmbedderKind.MINILM and self.dimension != 384:
            raise ConfigError(
                f"embedding dimension={self.dimension} does not fit all-MiniLM-L6-v2, which "
                "makes 384-dimensional vectors",
                reason="BAD_OPTIONS",
            )
        if self.kind is EmbedderKind.OPENAI and self.endpoint is None:
            raise ConfigError(
                "embedding kind 'openai' needs an endpoint (url, model, key)", reason="BAD_OPTIONS"
            )


def check_texts(texts: Sequence[str]) -> None:
    """Raise :class:`InvalidArgument` for too many texts, or a text that is too long."""
    if len(texts) > MAX_TEXTS:
        raise InvalidArgument(
            f"at most {MAX_TEXTS} texts per embedding call, got {len(texts)}",
            reason="TOO_MANY_TEXTS",
        )
    for i, text in enumerate(texts):
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidArgument(
                f"text {i} has {len(text)} characters; at most {MAX_TEXT_CHARS} are embedded",
                reason="TEXT_TOO_LONG",
            )


def normalize_rows(matrix: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """L2-normalise each row (zero rows stay zero)."""
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: npt.NDArray[np.float32] = (out / norms).astype(np.float32, copy=False)
    return normalized


def build_embedder(options: EmbedderOptions) -> Embedder:
    """The embedder ``options`` ask for (loading the ONNX model for the default)."""
    if options.kind is EmbedderKind.MINILM:
        from .minilm import OnnxMiniLmEmbedder

        return OnnxMiniLmEmbedder(
            batch_size=options.batch_size, max_tokens=options.max_tokens, threads=options.threads
        )
    if options.kind is EmbedderKind.OPENAI:
        from .openai_embedder import OpenAICompatibleEmbedder

        assert options.endpoint is not None  # checked in EmbedderOptions
        return OpenAICompatibleEmbedder(
            options.endpoint, dimension=options.dimension, batch_size=options.batch_size
        )
    from .hashing import HashingEmbedder

    return HashingEmbedder(dimension=options.dimension)
