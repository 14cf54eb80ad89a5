"""Tuning of the context domain, as frozen dataclasses checked on construction.

The service's pydantic settings (``[context]`` section) map onto these in the wiring
phase; an invalid value raises :class:`~symbi_common.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from symbi_common.errors import ConfigError

from .openai_http import OpenAIEndpoint

__all__ = [
    "HybridWeights",
    "ImportanceWeights",
    "KnowledgeOptions",
    "MemoryOptions",
    "RagOptions",
    "RankingWeights",
]


def _require(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(
            f"context option {key}={value!r} is invalid; allowed: {allowed}",
            reason="BAD_OPTIONS",
            details={"key": key},
        )


@dataclass(frozen=True, slots=True)
class HybridWeights:
    """How vector similarity and keyword (BM25) match combine into relevance."""

    vector: float = 0.7
    keyword: float = 0.3
    candidates: int = 40

    def __post_init__(self) -> None:
        _require(self.vector >= 0, "hybrid.vector", self.vector, ">= 0")
        _require(self.keyword >= 0, "hybrid.keyword", self.keyword, ">= 0")
        _require(
            self.vector + self.keyword > 0, "hybrid", (self.vector, self.keyword), "a positive sum"
        )
        _require(10 <= self.candidates <= 500, "hybrid.candidates", self.candidates, "10..500")


@dataclass(frozen=True, slots=True)
class RankingWeights:
    """Final ranking: relevance, recency (half-life decay) and importance."""

    relevance: float = 0.75
    recency: float = 0.10
    importance: float = 0.15
    recency_half_life_s: float = 7 * 86400.0

    def __post_init__(self) -> None:
        for key in ("relevance", "recency", "importance"):
            value = getattr(self, key)
            _require(value >= 0, f"ranking.{key}", value, ">= 0")
        _require(self.relevance > 0, "ranking.relevance", self.relevance, "> 0")
        _require(
            self.recency_half_life_s > 0,
            "ranking.recency_half_life_s",
            self.recency_half_life_s,
            "> 0",
        )


@dataclass(frozen=True, slots=True)
class ImportanceWeights:
    """Long-term importance from recency of use, frequency of use and explicit feedback."""

    recency: float = 0.3
    frequency: float = 0.3
    explicit: float = 0.4
    half_life_s: float = 30 * 86400.0
    frequency_scale: float = 5.0
    feedback_step: float = 0.15

    def __post_init__(self) -> None:
        total = self.recency + self.frequency + self.explicit
        _require(
            min(self.recency, self.frequency, self.explicit) >= 0 and total > 0,
            "importance weights",
            (self.recency, self.frequency, self.explicit),
            "non-negative with a positive sum",
        )
        _require(self.half_life_s > 0, "importance.half_life_s", self.half_life_s, "> 0")
        _require(
            self.frequency_scale > 0, "importance.frequency_scale", self.frequency_scale, "> 0"
        )
        _require(
            0 < self.feedback_step <= 1,
            "importance.feedback_step",
            self.feedback_step,
            "0 < x <= 1",
        )


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    """Limits and lifetimes of agent memory."""

    short_term_ttl_s: float = 3600.0
    max_ttl_s: float = 30 * 86400.0
    max_content_chars: int = 16_000
    max_tags: int = 32
    max_tag_chars: int = 64
    max_batch: int = 256
    max_recent: int = 1000
    hybrid: HybridWeights = field(default_factory=HybridWeights)
    ranking: RankingWeights = field(default_factory=RankingWeights)
    importance: ImportanceWeights = field(default_factory=ImportanceWeights)

    def __post_init__(self) -> None:
        _require(self.short_term_ttl_s > 0, "short_term_ttl_s", self.short_term_ttl_s, "> 0")
        _require(
            self.max_ttl_s >= self.short_term_ttl_s,
            "max_ttl_s",
            self.max_ttl_s,
            ">= short_term_ttl_s",
        )
        _require(self.max_content_chars > 0, "max_content_chars", self.max_content_chars, "> 0")
        _require(0 < self.max_batch <= 1024, "max_batch", self.max_batch, "1..1024")


@dataclass(frozen=True, slots=True)
class KnowledgeOptions:
    """Chunking, size limits and retention of the knowledge base.

    ``retention_days`` = 0 keeps documents forever; otherwise documents older than that
    are no longer returned and :meth:`KnowledgeBase.purge_expired` deletes them.
    """

    chunk_chars: int = 800
    overlap_chars: int = 120
    max_document_bytes: int = 2 * 1024 * 1024
    max_chunks: int = 4000
    retention_days: float = 0.0
    hybrid: HybridWeights = field(default_factory=HybridWeights)
    ranking: RankingWeights = field(
        default_factory=lambda: RankingWeights(recency=0.0, importance=0.1)
    )

    def __post_init__(self) -> None:
        _require(100 <= self.chunk_chars <= 20_000, "chunk_chars", self.chunk_chars, "100..20000")
        _require(
            0 <= self.overlap_chars < self.chunk_chars // 2,
            "overlap_chars",
            self.overlap_chars,
            "0 <= overlap < chunk_chars/2",
        )
        _require(self.max_document_bytes > 0, "max_document_bytes", self.max_document_bytes, "> 0")
        _require(self.retention_days >= 0, "knowledge_retention_days", self.retention_days, ">= 0")


@dataclass(frozen=True, slots=True)
class RagOptions:
    """The RAG pipeline: how many passages, how long an answer, and an optional LLM.

    Without ``llm`` answers are extractive (cited sentences of the passages). With it, the
    configured OpenAI-compatible chat endpoint writes the answer from the same passages;
    when it fails and ``fallback_to_extractive`` is on, the extractive answer is returned.
    """

    passages: int = 5
    answer_sentences: int = 3
    max_question_chars: int = 2000
    llm: OpenAIEndpoint | None = None
    llm_max_tokens: int = 400
    fallback_to_extractive: bool = True

    def __post_init__(self) -> None:
        _require(1 <= self.passages <= 50, "rag.passages", self.passages, "1..50")
        _require(
            1 <= self.answer_sentences <= 20, "rag.answer_sentences", self.answer_sentences, "1..20"
        )
        _require(
            self.max_question_chars > 0, "rag.max_question_chars", self.max_question_chars, "> 0"
        )
