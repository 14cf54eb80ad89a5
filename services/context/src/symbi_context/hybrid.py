"""Hybrid search: vector similarity and keyword (BM25) match fused into one relevance.

Both searches run under the same filter and return ``candidates`` hits each. Points found
only by keyword get their exact vector similarity from a second, id-restricted vector search,
so every candidate has both scores. Keyword scores are divided by the best keyword score of
the query (BM25 is unbounded); vector scores are cosine similarity clipped at 0. Relevance
is their weighted mean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .filters import Filter, HasId, all_of
from .keywords import KeywordEncoder
from .options import HybridWeights
from .vector_store import ScoredPoint, VectorStore

__all__ = ["HybridHit", "HybridSearcher"]


@dataclass(frozen=True, slots=True)
class HybridHit:
    """A candidate with its component scores."""

    id: str
    payload: Mapping[str, Any]
    vector_score: float
    keyword_score: float
    relevance: float


class HybridSearcher:
    """Runs the two searches of one query and fuses them."""

    def __init__(
        self, store: VectorStore, keywords: KeywordEncoder, weights: HybridWeights
    ) -> None:
        self._store = store
        self._keywords = keywords
        self._weights = weights

    async def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32] | Sequence[float],
        query_text: str,
        *,
        filter: Filter | None,
        candidates: int | None = None,
        weights: HybridWeights | None = None,
    ) -> list[HybridHit]:
        """Candidates best first by relevance (``weights`` override the configured ones)."""
        w = weights or self._weights
        n = candidates or w.candidates
        sparse = self._keywords.query(query_text)
        use_keywords = w.keyword > 0 and not sparse.is_empty()
        try:
            async with asyncio.TaskGroup() as tg:
                dense_task = tg.create_task(
                    self._store.search(collection, vector, limit=n, filter=filter)
                )
                kw_task = (
                    tg.create_task(
                        self._store.keyword_search(collection, sparse, limit=n, filter=filter)
                    )
                    if use_keywords
                    else None
                )
        except ExceptionGroup as group:
            # Both searches check the same input, so they fail alike: the caller gets the
            # error itself (e.g. InvalidArgument for a wrong vector size), not a group.
            raise _first(group) from None
        dense_hits = dense_task.result()
        kw_hits: list[ScoredPoint] = kw_task.result() if kw_task is not None else []

        vec: dict[str, float] = {h.id: h.score for h in dense_hits}
        payloads: dict[str, Mapping[str, Any]] = {h.id: h.payload for h in dense_hits}
        missing = [h.id for h in kw_hits if h.id not in vec]
        if missing:
            rescored = await self._store.search(
                collection, vector, limit=len(missing), filter=all_of(filter, HasId(tuple(missing)))
            )
            vec.update((h.id, h.score) for h in rescored)
        for h in kw_hits:
            payloads.setdefault(h.id, h.payload)

        best_kw = max((h.score for h in kw_hits), default=0.0)
        kw = {h.id: h.score / best_kw for h in kw_hits} if best_kw > 0 else {}
        total = w.vector + w.keyword
        hits = []
        for pid, payload in payloads.items():
            v = max(0.0, vec.get(pid, 0.0))
            k = kw.get(pid, 0.0)
            hits.append(HybridHit(pid, payload, v, k, (w.vector * v + w.keyword * k) / total))
        hits.sort(key=lambda h: h.relevance, reverse=True)
        return hits


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error
