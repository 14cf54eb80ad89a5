"""Embeddings from any provider that speaks the OpenAI ``/embeddings`` API."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np
import numpy.typing as npt

from symbi_common.errors import FailedPrecondition, Unavailable

from .embedding import check_texts, normalize_rows
from .openai_http import OpenAICompatibleClient, OpenAIEndpoint

__all__ = ["OpenAICompatibleEmbedder"]


class OpenAICompatibleEmbedder:
    """Batches texts into ``/embeddings`` requests and checks what comes back.

    The provider must return ``dimension``-long vectors: anything else is a
    :class:`FailedPrecondition` (the configured dimension and the model disagree, and
    storing such vectors would corrupt the collection).
    """

    def __init__(
        self,
        endpoint: OpenAIEndpoint,
        *,
        dimension: int,
        batch_size: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = OpenAICompatibleClient(endpoint, transport=transport)
        self._batch_size = batch_size
        self.dimension = dimension
        self.model_id = f"openai:{endpoint.model}"

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors for ``texts``, one request per ``batch_size`` texts."""
        check_texts(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            out[start : start + len(batch)] = await self._embed_batch(batch)
        return out

    async def _embed_batch(self, batch: list[str]) -> npt.NDArray[np.float32]:
        data = await self._client.post(
            "embeddings", {"model": self._client.endpoint.model, "input": batch}
        )
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(batch):
            raise Unavailable(
                f"embedding provider returned {len(items) if isinstance(items, list) else 'no'} "
                f"vectors for {len(batch)} texts",
                reason="UPSTREAM_BAD_RESPONSE",
            )
        rows = np.zeros((len(batch), self.dimension), dtype=np.float32)
        seen = set()
        for pos, item in enumerate(items):
            index = item.get("index", pos) if isinstance(item, dict) else None
            vector = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(batch) or index in seen:
                raise Unavailable(
                    "embedding provider returned a bad or repeated index",
                    reason="UPSTREAM_BAD_RESPONSE",
                )
            if not isinstance(vector, list) or len(vector) != self.dimension:
                got = len(vector) if isinstance(vector, list) else "no"
                raise FailedPrecondition(
                    f"embedding provider returned {got}-dimensional vectors; configured "
                    f"dimension is {self.dimension}",
                    reason="EMBEDDING_DIMENSION_MISMATCH",
                )
            seen.add(index)
            rows[index] = np.asarray(vector, dtype=np.float32)
        if not np.isfinite(rows).all():
            raise Unavailable(
                "embedding provider returned non-finite values", reason="UPSTREAM_BAD_RESPONSE"
            )
        return normalize_rows(rows)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
