"""The RAG pipeline: analyse → embed once → hybrid search → visibility → ranking → answer.

Searches the asking agent's memory (and shared memory the policy allows) and the knowledge
base it may read, merges both by final ranking score (relevance, recency, importance), and
answers from the top passages. Every :class:`Answer` carries its sources with their scores,
numbered as the answer cites them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from symbi_common.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable

from .answering import Answerer, ExtractiveAnswerer, Passage
from .filters import Filter
from .knowledge import KnowledgeBase, KnowledgeQuery
from .memory import MemoryQuery, MemoryStore, check_agent_id
from .options import RagOptions
from .ports import Clock, SystemClock
from .query_analysis import QueryAnalysis, QueryAnalyzer, Scope

__all__ = ["Answer", "RagPipeline", "Source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Source:
    """One passage behind an answer. ``number`` is its citation mark ``[number]``.

    ``kind`` is ``memory`` or ``knowledge``; ``id`` is the memory id or chunk id;
    ``doc_id`` is set for knowledge. ``score`` is the final ranking score; ``relevance``,
    ``vector_score`` and ``keyword_score`` are its parts.
    """

    number: int
    kind: str
    id: str
    owner: str
    text: str
    score: float
    relevance: float
    vector_score: float
    keyword_score: float
    doc_id: str | None = None
    title: str = ""
    section: str = ""
    timestamp: float = 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer and where it came from. ``mode`` is ``extractive``, ``llm`` or
    ``extractive_fallback`` (the LLM failed and the extractive answer stands in)."""

    text: str
    sources: tuple[Source, ...]
    mode: str
    analysis: QueryAnalysis
    timings_ms: Mapping[str, float] = field(default_factory=dict)


class RagPipeline:
    """Answers questions from memory and knowledge."""

    def __init__(
        self,
        memory: MemoryStore,
        knowledge: KnowledgeBase,
        options: RagOptions | None = None,
        *,
        answerer: Answerer | None = None,
        analyzer: QueryAnalyzer | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._memory = memory
        self._knowledge = knowledge
        self._options = options or RagOptions()
        self._extractive = ExtractiveAnswerer(self._options.answer_sentences)
        self._answerer = answerer or self._extractive
        self._analyzer = analyzer or QueryAnalyzer()
        self._clock = clock or SystemClock()

    async def ask(
        self,
        agent_id: str,
        question: str,
        *,
        passages: int | None = None,
        scope: str | None = None,
        memory_filter: Filter | None = None,
        knowledge_filter: Filter | None = None,
    ) -> Answer:
        """Answer ``question`` for ``agent_id`` with cited sources."""
        check_agent_id(agent_id)
        if not isinstance(question, str) or not question.strip():
            raise InvalidArgument("question is empty", reason="EMPTY_QUERY")
        if len(question) > self._options.max_question_chars:
            raise InvalidArgument(
                f"question has {len(question)} characters; at most "
                f"{self._options.max_question_chars}",
                reason="QUERY_TOO_LONG",
            )
        k = passages or self._options.passages
        if not 1 <= k <= 50:
            raise InvalidArgument(f"passages {k} is outside 1..50", reason="BAD_LIMIT")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()

        analysis = self._analyzer.analyze(question, now=self._clock.now())
        if scope is not None:
            if scope not in (Scope.ALL, Scope.MEMORY, Scope.KNOWLEDGE):
                raise InvalidArgument(
                    f"scope {scope!r} is not one of all, memory, knowledge", reason="BAD_SCOPE"
                )
            analysis = _with_scope(analysis, scope)
        t1 = time.perf_counter()
        timings["analyze"] = (t1 - t0) * 1e3

        vector = (await self._memory.embedder.embed([analysis.text]))[0]
        t2 = time.perf_counter()
        timings["embed"] = (t2 - t1) * 1e3

        sources: list[Source] = []
        if analysis.scope in (Scope.ALL, Scope.MEMORY) and not analysis.doc_ids:
            mq = MemoryQuery(
                text=analysis.text,
                kinds=analysis.kinds,
                tags=analysis.tags,
                since=analysis.since,
                until=analysis.until,
                filter=memory_filter,
                limit=k,
            )
            for m in await self._memory.retrieve_with_vector(agent_id, mq, vector):
                r = m.record
                sources.append(
                    Source(
                        0,
                        "memory",
                        r.id,
                        r.agent_id,
                        r.content,
                        m.score,
                        m.relevance,
                        m.vector_score,
                        m.keyword_score,
                        timestamp=r.created_at,
                    )
                )
        if analysis.scope in (Scope.ALL, Scope.KNOWLEDGE) and not analysis.kinds:
            kq = KnowledgeQuery(
                text=analysis.text,
                tags=analysis.tags,
                doc_ids=analysis.doc_ids,
                filter=knowledge_filter,
                limit=k,
            )
            for h in await self._knowledge.search_with_vector(agent_id, kq, vector):
                sources.append(
                    Source(
                        0,
                        "knowledge",
                        h.id,
                        h.owner,
                        h.text,
                        h.score,
                        h.relevance,
                        h.vector_score,
                        h.keyword_score,
                        doc_id=h.doc_id,
                        title=h.title,
                        section=h.section,
                        timestamp=h.ingested_at,
                    )
                )
        t3 = time.perf_counter()
        timings["search"] = (t3 - t2) * 1e3

        sources.sort(key=lambda s: s.score, reverse=True)
        ranked = tuple(
            Source(
                i + 1,
                s.kind,
                s.id,
                s.owner,
                s.text,
                s.score,
                s.relevance,
                s.vector_score,
                s.keyword_score,
                s.doc_id,
                s.title,
                s.section,
                s.timestamp,
            )
            for i, s in enumerate(sources[:k])
        )
        passages_ = [Passage(s.number, s.text, s.score, s.title) for s in ranked]
        mode = "extractive" if self._answerer is self._extractive else "llm"
        try:
            text = await self._answerer.answer(analysis.text, analysis.keywords, passages_)
        except (Unavailable, DeadlineExceeded, ResourceExhausted) as exc:
            if not self._options.fallback_to_extractive or mode == "extractive":
                raise
            log.warning("LLM answer failed (%s); answering extractively", exc.reason)
            text = await self._extractive.answer(analysis.text, analysis.keywords, passages_)
            mode = "extractive_fallback"
        timings["answer"] = (time.perf_counter() - t3) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return Answer(text, ranked, mode, analysis, timings)


def _with_scope(analysis: QueryAnalysis, scope: str) -> QueryAnalysis:
    return QueryAnalysis(
        text=analysis.text,
        keywords=analysis.keywords,
        tags=analysis.tags,
        kinds=analysis.kinds,
        doc_ids=analysis.doc_ids,
        scope=scope,
        since=analysis.since,
        until=analysis.until,
    )
