"""Feature-hashing embedder: deterministic, instant, and without any semantics.

Only for an explicit ``embedding_kind = "hashing"`` (tests, constrained deployments): word
and character-trigram features are hashed into signed buckets, so texts sharing words end
up close, but synonyms do not.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .embedding import check_texts, normalize_rows
from .keywords import stem, tokenize

__all__ = ["HashingEmbedder"]

# A few short texts cost less than a thread hop.
_INLINE_TEXTS = 4


class HashingEmbedder:
    """Signed feature hashing of stemmed words and character trigrams."""

    def __init__(self, *, dimension: int = 384) -> None:
        self.dimension = dimension
        self.model_id = f"hashing-{dimension}"

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors for ``texts`` (batches run on a worker thread, off the event loop)."""
        check_texts(texts)
        if len(texts) > _INLINE_TEXTS:
            return await asyncio.to_thread(self.embed_sync, texts)
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Blocking form of :meth:`embed`."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                h = int.from_bytes(digest, "big")
                out[row, h % self.dimension] += weight if (h >> 63) else -weight
        return normalize_rows(out)

    async def aclose(self) -> None:
        """Nothing to release."""


def _features(text: str) -> list[tuple[str, float]]:
    feats: list[tuple[str, float]] = []
    for token in tokenize(text):
        word = stem(token)
        feats.append(("w:" + word, 1.0))
        padded = f"^{word}$"
        feats.extend(("c:" + padded[i : i + 3], 0.3) for i in range(len(padded) - 2))
    return feats
