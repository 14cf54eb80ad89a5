"""The knowledge base: documents ingested as embedded chunks, searchable by agents.

- Formats: plain text, Markdown, JSON (:mod:`~symbi_context.chunking`).
- Dedup by content hash: a document whose normalised content the owner already ingested is
  not stored again (its existing id comes back, ``deduplicated=True``); re-ingesting a
  document id with changed content re-embeds only chunks whose text changed.
- Update and delete by document id; retention (``retention_days``) hides older documents
  from search at once and :meth:`KnowledgeBase.purge_expired` deletes them.
- Visibility: an owner always sees its documents; other agents see a document when the
  policy allows ``read_context`` at its access level (default ``public``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

from .chunking import Chunk, Chunker, DocumentFormat
from .embedding import Embedder
from .filters import Condition, Filter, Match, MatchAny, Range, all_of
from .hybrid import HybridHit, HybridSearcher
from .keywords import KeywordEncoder
from .layout import KNOWLEDGE, knowledge_collection
from .memory import check_agent_id
from .options import HybridWeights, KnowledgeOptions
from .ports import (
    AccessLevel,
    AccessRequest,
    Clock,
    MemoryEvent,
    MemoryEventSink,
    NullEventSink,
    PolicyPort,
    SystemClock,
)
from .ranking import Ranker
from .vector_store import VectorPoint, VectorStore

__all__ = [
    "DocumentInfo",
    "IngestResult",
    "KnowledgeBase",
    "KnowledgeHit",
    "KnowledgeQuery",
    "NewDocument",
]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6c0a4b1e-6f6b-4c38-9a51-2f3f0c1c9d10")
_WRITE_BATCH = 256
_DOC_ID_MAX = 128
_RESERVED_FIELDS = frozenset({"owner", "access_level", "ingested_at"})


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to ingest. ``content`` as text or UTF-8 bytes; ``doc_id`` to create or
    replace a document with a chosen id (otherwise one is assigned)."""

    content: str | bytes
    format: DocumentFormat = DocumentFormat.TEXT
    title: str = ""
    source: str = ""
    doc_id: str | None = None
    tags: tuple[str, ...] = ()
    access_level: AccessLevel = AccessLevel.PUBLIC
    importance: float = 0.5


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What an ingest did: how many chunks the document has, how many were embedded now,
    how many were reused unchanged and how many old ones were removed."""

    doc_id: str
    content_hash: str
    chunks: int
    embedded: int
    reused: int
    removed: int
    deduplicated: bool


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A stored document's metadata."""

    doc_id: str
    owner: str
    title: str
    source: str
    format: DocumentFormat
    content_hash: str
    tags: tuple[str, ...]
    access_level: AccessLevel
    ingested_at: float
    chunks: int


@dataclass(frozen=True, slots=True)
class KnowledgeQuery:
    """A knowledge search. ``filter`` may name ``doc_id``, ``tags``, ``format``,
    ``chunk_index``. ``weights`` replace the configured hybrid weights for this query."""

    text: str
    tags: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    filter: Filter | None = None
    limit: int = 10
    include_others: bool = True
    weights: HybridWeights | None = None


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """A matching chunk with the scores that ranked it."""

    id: str
    doc_id: str
    owner: str
    title: str
    source: str
    section: str
    text: str
    chunk_index: int
    ingested_at: float
    score: float
    relevance: float
    vector_score: float
    keyword_score: float
    importance: float


@dataclass(slots=True)
class _Existing:
    content_hash: str
    by_hash: dict[str, str] = field(default_factory=dict)  # chunk_hash → point id
    ids: list[str] = field(default_factory=list)


class KnowledgeBase:
    """Ingests, searches, updates and deletes documents. Call :meth:`open` once first."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        policy: PolicyPort,
        options: KnowledgeOptions | None = None,
        *,
        clock: Clock | None = None,
        events: MemoryEventSink | None = None,
        keywords: KeywordEncoder | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._policy = policy
        self._options = options or KnowledgeOptions()
        self._clock = clock or SystemClock()
        self._events = events or NullEventSink()
        self._keywords = keywords or KeywordEncoder()
        self._chunker = Chunker(self._options.chunk_chars, self._options.overlap_chars)
        self._hybrid = HybridSearcher(store, self._keywords, self._options.hybrid)
        self._ranker = Ranker(self._options.ranking)

    async def open(self) -> None:
        """Create or open the knowledge collection."""
        await self._store.ensure_collection(knowledge_collection(self._embedder.dimension))

    # ---------------------------------------------------------------- ingest

    async def ingest(self, owner: str, document: NewDocument) -> IngestResult:
        """Chunk, embed and store a document (or update the one with ``doc_id``)."""
        check_agent_id(owner)
        text = self._decode(document.content)
        if not 0.0 <= document.importance <= 1.0:
            raise InvalidArgument(
                f"importance {document.importance} is outside 0..1", reason="BAD_IMPORTANCE"
            )
        tags = _check_tags(document.tags)
        chunks = self._chunker.chunk(text, document.format)
        if not chunks:
            raise InvalidArgument("document has no text to index", reason="EMPTY_DOCUMENT")
        if len(chunks) > self._options.max_chunks:
            raise InvalidArgument(
                f"document makes {len(chunks)} chunks; at most {self._options.max_chunks}",
                reason="DOCUMENT_TOO_LARGE",
            )
        if document.access_level is not AccessLevel.PUBLIC:
            await self._require_share(owner, document.access_level, tags)
        content_hash = _hash(f"{document.format.value}\x00{_normalise(text)}")

        if document.doc_id is None:
            dup = await self._find_by_hash(owner, content_hash)
            if dup is not None:
                return dup
            doc_id = uuid.uuid4().hex
            existing = _Existing(content_hash="")
        else:
            doc_id = _check_doc_id(document.doc_id)
            existing = await self._existing(owner, doc_id)
            if existing.content_hash == content_hash:
                return IngestResult(
                    doc_id, content_hash, len(existing.ids), 0, len(existing.ids), 0, True
                )

        now = self._clock.now()
        unique: dict[str, Chunk] = {}
        for chunk in chunks:
            unique.setdefault(_hash(chunk.text), chunk)
        base = {
            "owner": owner,
            "doc_id": doc_id,
            "content_hash": content_hash,
            "title": document.title[:512],
            "source": document.source[:1024],
            "format": document.format.value,
            "tags": list(tags),
            "access_level": document.access_level.value,
            "ingested_at": now,
            "importance": document.importance,
        }
        fresh = [(h, c) for h, c in unique.items() if h not in existing.by_hash]
        reused = [(h, c) for h, c in unique.items() if h in existing.by_hash]
        # New chunks first, stale ones last: a crash in between leaves extra chunks (fixed
        # by re-ingesting), never a document with missing ones.
        for start in range(0, len(fresh), _WRITE_BATCH):
            batch = fresh[start : start + _WRITE_BATCH]
            vectors = await self._embedder.embed([_embed_text(document.title, c) for _, c in batch])
            points = [
                VectorPoint(
                    _chunk_id(owner, doc_id, h),
                    vectors[i],
                    {
                        **base,
                        "chunk_hash": h,
                        "chunk_index": c.index,
                        "section": c.section,
                        "text": c.text,
                    },
                    self._keywords.document(_embed_text(document.title, c)),
                )
                for i, (h, c) in enumerate(batch)
            ]
            await self._store.upsert(KNOWLEDGE, points)
        for h, c in reused:
            await self._store.set_payload(
                KNOWLEDGE,
                existing.by_hash[h],
                {**base, "chunk_index": c.index, "section": c.section},
            )
        keep = {existing.by_hash[h] for h, _ in reused}
        stale = [pid for pid in existing.ids if pid not in keep]
        for start in range(0, len(stale), _WRITE_BATCH):
            await self._store.delete(KNOWLEDGE, stale[start : start + _WRITE_BATCH])
        await self._events.emit(
            MemoryEvent("ingested", owner, (doc_id,), now, {"chunks": str(len(unique))})
        )
        return IngestResult(
            doc_id=doc_id,
            content_hash=content_hash,
            chunks=len(unique),
            embedded=len(fresh),
            reused=len(reused),
            removed=len(stale),
            deduplicated=False,
        )

    def _decode(self, content: str | bytes) -> str:
        raw = content.encode() if isinstance(content, str) else content
        if len(raw) > self._options.max_document_bytes:
            raise InvalidArgument(
                f"document is {len(raw)} bytes; at most {self._options.max_document_bytes} "
                "bytes are ingested (split it, or raise max_document_bytes)",
                reason="DOCUMENT_TOO_LARGE",
                details={"bytes": str(len(raw)), "limit": str(self._options.max_document_bytes)},
            )
        if isinstance(content, str):
            return content
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(
                f"document is not UTF-8 (byte {exc.start})", reason="MALFORMED_DOCUMENT"
            ) from None

    async def _find_by_hash(self, owner: str, content_hash: str) -> IngestResult | None:
        flt = Filter(must=(Match("owner", owner), Match("content_hash", content_hash)))
        page, _ = await self._store.scroll(KNOWLEDGE, filter=flt, limit=1)
        if not page:
            return None
        doc_id = str(page[0].payload["doc_id"])
        n = await self._store.count(KNOWLEDGE, filter=_doc_filter(owner, doc_id))
        return IngestResult(doc_id, content_hash, n, 0, n, 0, True)

    async def _existing(self, owner: str, doc_id: str) -> _Existing:
        existing = _Existing(content_hash="")
        offset = None
        while True:
            page, offset = await self._store.scroll(
                KNOWLEDGE, filter=_doc_filter(owner, doc_id), limit=256, offset=offset
            )
            for p in page:
                existing.ids.append(p.id)
                existing.by_hash[str(p.payload.get("chunk_hash"))] = p.id
                existing.content_hash = str(p.payload.get("content_hash", ""))
            if offset is None:
                return existing

    # ---------------------------------------------------------------- delete, info

    async def delete(self, owner: str, doc_id: str) -> int:
        """Delete one of the owner's documents; returns how many chunks went."""
        check_agent_id(owner)
        flt = _doc_filter(owner, _check_doc_id(doc_id))
        n = await self._store.count(KNOWLEDGE, filter=flt)
        if n == 0:
            raise NotFound(f"document {doc_id} not found", reason="DOCUMENT_NOT_FOUND")
        await self._store.delete_where(KNOWLEDGE, flt)
        await self._events.emit(
            MemoryEvent("document_deleted", owner, (doc_id,), self._clock.now())
        )
        return n

    async def document(self, owner: str, doc_id: str) -> DocumentInfo:
        """Metadata of one of the owner's documents."""
        check_agent_id(owner)
        flt = _doc_filter(owner, _check_doc_id(doc_id))
        page, _ = await self._store.scroll(KNOWLEDGE, filter=flt, limit=1)
        if not page:
            raise NotFound(f"document {doc_id} not found", reason="DOCUMENT_NOT_FOUND")
        p = page[0].payload
        return DocumentInfo(
            doc_id=doc_id,
            owner=owner,
            title=str(p.get("title", "")),
            source=str(p.get("source", "")),
            format=DocumentFormat(p["format"]),
            content_hash=str(p["content_hash"]),
            tags=tuple(p.get("tags") or ()),
            access_level=AccessLevel(p["access_level"]),
            ingested_at=float(p["ingested_at"]),
            chunks=await self._store.count(KNOWLEDGE, filter=flt),
        )

    async def purge_expired(self) -> int:
        """Delete chunks older than the retention period; returns how many."""
        cutoff = self._cutoff()
        if cutoff is None:
            return 0
        flt = Filter(must=(Range("ingested_at", lt=cutoff),))
        n = await self._store.count(KNOWLEDGE, filter=flt)
        if n:
            await self._store.delete_where(KNOWLEDGE, flt)
            log.info("purged %d knowledge chunks past retention", n)
        return n

    def _cutoff(self) -> float | None:
        days = self._options.retention_days
        return self._clock.now() - days * 86400.0 if days > 0 else None

    # ---------------------------------------------------------------- search

    async def search(self, reader: str, query: KnowledgeQuery) -> list[KnowledgeHit]:
        """Chunks relevant to ``query.text`` the reader may see, best first."""
        text = query.text.strip() if isinstance(query.text, str) else ""
        if not text:
            raise InvalidArgument("query text is empty", reason="EMPTY_QUERY")
        vector = (await self._embedder.embed([text]))[0]
        return await self.search_with_vector(reader, query, vector)

    async def search_with_vector(
        self, reader: str, query: KnowledgeQuery, vector: npt.NDArray[np.float32]
    ) -> list[KnowledgeHit]:
        """:meth:`search` with the query already embedded."""
        check_agent_id(reader)
        if not 1 <= query.limit <= 100:
            raise InvalidArgument(f"limit {query.limit} is outside 1..100", reason="BAD_LIMIT")
        if query.filter is not None:
            _check_user_filter(query.filter)
        conditions: list[Condition | None] = [
            None if query.include_others else Match("owner", reader),
            MatchAny("tags", _check_tags(query.tags)) if query.tags else None,
            MatchAny("doc_id", tuple(_check_doc_id(d) for d in query.doc_ids))
            if query.doc_ids
            else None,
            query.filter,
        ]
        cutoff = self._cutoff()
        if cutoff is not None:
            conditions.append(Range("ingested_at", gte=cutoff))
        flt = all_of(*conditions)
        candidates = max(self._options.hybrid.candidates, query.limit * 4)
        hits = await self._hybrid.search(
            KNOWLEDGE,
            vector,
            query.text,
            filter=flt if not flt.is_empty() else None,
            candidates=candidates,
            weights=query.weights,
        )
        hits = await self._visible(reader, hits)
        now = self._clock.now()
        out = [self._rank(h, now) for h in hits]
        out.sort(key=lambda h: h.score, reverse=True)
        return out[: query.limit]

    def _rank(self, hit: HybridHit, now: float) -> KnowledgeHit:
        p = hit.payload
        importance = float(p.get("importance", 0.5))
        ingested_at = float(p["ingested_at"])
        return KnowledgeHit(
            id=hit.id,
            doc_id=str(p["doc_id"]),
            owner=str(p["owner"]),
            title=str(p.get("title", "")),
            source=str(p.get("source", "")),
            section=str(p.get("section", "")),
            text=str(p.get("text", "")),
            chunk_index=int(p.get("chunk_index", 0)),
            ingested_at=ingested_at,
            score=self._ranker.score(
                relevance=hit.relevance, timestamp=ingested_at, importance=importance, now=now
            ),
            relevance=hit.relevance,
            vector_score=hit.vector_score,
            keyword_score=hit.keyword_score,
            importance=importance,
        )

    async def _visible(self, reader: str, hits: list[HybridHit]) -> list[HybridHit]:
        foreign = [h for h in hits if h.payload.get("owner") != reader]
        if not foreign:
            return hits
        requests = [
            AccessRequest(
                principal=reader,
                action="read_context",
                owner=str(h.payload.get("owner")),
                access_level=AccessLevel(h.payload.get("access_level", AccessLevel.SECRET.value)),
                memory_type="knowledge",
                tags=tuple(h.payload.get("tags") or ()),
            )
            for h in foreign
        ]
        unique = list(dict.fromkeys(requests))
        decisions = await self._policy.decide(unique)
        if len(decisions) != len(unique):
            raise FailedPrecondition(
                f"policy answered {len(decisions)} decisions for {len(unique)} requests",
                reason="POLICY_BAD_ANSWER",
            )
        allowed = {req for req, d in zip(unique, decisions, strict=True) if d.allowed}
        ok_ids = {h.id for h, req in zip(foreign, requests, strict=True) if req in allowed}
        return [h for h in hits if h.payload.get("owner") == reader or h.id in ok_ids]

    async def _require_share(self, owner: str, level: AccessLevel, tags: tuple[str, ...]) -> None:
        req = AccessRequest(owner, "share_context", owner, level, "knowledge", tags)
        (decision,) = await self._policy.decide([req])
        if not decision.allowed:
            raise PermissionDenied(
                f"publishing knowledge at {level.value} is not allowed: {decision.reason}",
                reason="SHARE_DENIED",
            )


def _doc_filter(owner: str, doc_id: str) -> Filter:
    return Filter(must=(Match("owner", owner), Match("doc_id", doc_id)))


def _chunk_id(owner: str, doc_id: str, chunk_hash: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{owner}\x00{doc_id}\x00{chunk_hash}"))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _normalise(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def _embed_text(title: str, chunk: Chunk) -> str:
    head = " — ".join(part for part in (title, chunk.section) if part)
    return f"{head}\n{chunk.text}" if head else chunk.text


def _check_doc_id(doc_id: str) -> str:
    if (
        not isinstance(doc_id, str)
        or not 0 < len(doc_id) <= _DOC_ID_MAX
        or not doc_id.isprintable()
    ):
        raise InvalidArgument(
            f"document id must be 1..{_DOC_ID_MAX} printable characters", reason="BAD_DOC_ID"
        )
    return doc_id


def _check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tags, str) or len(tags) > 32:
        raise InvalidArgument("tags must be a list of at most 32 strings", reason="BAD_TAGS")
    for tag in tags:
        if not isinstance(tag, str) or not 0 < len(tag) <= 64:
            raise InvalidArgument(f"tag {tag!r} must be 1..64 characters", reason="BAD_TAGS")
    return tuple(dict.fromkeys(tags))


def _check_user_filter(flt: Filter) -> None:
    stack: list[Any] = [flt]
    while stack:
        cond = stack.pop()
        if isinstance(cond, Filter):
            stack.extend((*cond.must, *cond.should, *cond.must_not))
        elif getattr(cond, "key", None) in _RESERVED_FIELDS:
            raise InvalidArgument(
                f"filters may not name {cond.key!r}; reserved: {', '.join(sorted(_RESERVED_FIELDS))}",
                reason="RESERVED_FILTER_FIELD",
            )
