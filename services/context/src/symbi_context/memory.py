"""Agent memory: short-term, working, long-term and shared, with isolation between agents.

Kinds:

- ``short_term`` — recent interactions; expire after a TTL (never returned once expired,
  deleted by :meth:`MemoryStore.sweep`).
- ``working`` — scratch state of one task (``task_id`` required), cleared with the task.
- ``long_term`` — persistent; its importance follows use (recency, frequency) and explicit
  feedback (:class:`~symbi_context.ranking.ImportanceModel`).
- ``shared`` — long-term memory its owner published at an access level; other agents read
  it only when the :class:`~symbi_context.ports.PolicyPort` allows.

Isolation is enforced here, not by callers: every query is built with the caller's agent id
as a filter, caller-supplied filters may not name the partitioning fields, and other agents'
shared memories pass through the policy before they are returned. A memory the caller may
not see is reported as not found, never as forbidden, so its existence does not leak.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

from .embedding import Embedder
from .filters import Condition, Filter, HasId, Match, MatchAny, Range, all_of
from .hybrid import HybridHit, HybridSearcher
from .keywords import KeywordEncoder
from .layout import MEMORIES, memory_collection
from .options import MemoryOptions
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
from .ranking import ImportanceModel, Ranker
from .vector_store import VectorPoint, VectorStore

__all__ = [
    "MemoryKind",
    "MemoryQuery",
    "MemoryRecord",
    "MemoryStore",
    "NewMemory",
    "RetrievedMemory",
    "check_agent_id",
]

log = logging.getLogger(__name__)

# Fields a caller's own filter may not name: they carry isolation and sharing decisions.
_RESERVED_FIELDS = frozenset({"agent_id", "access_level", "kind", "expires_at"})
_DEFAULT_IMPORTANCE = 0.5
_MAX_AGENT_ID = 256


class MemoryKind(enum.StrEnum):
    """Kinds of memory (``memory_type`` in policy requests)."""

    SHORT_TERM = "short_term"
    WORKING = "working"
    LONG_TERM = "long_term"
    SHARED = "shared"


@dataclass(frozen=True, slots=True)
class NewMemory:
    """A memory to store.

    ``ttl_s`` applies to short-term memory (default: the configured short-term TTL);
    ``task_id`` is required for working memory; ``access_level`` is required for shared
    memory and refused otherwise; ``importance`` in [0, 1] seeds long-term importance.
    """

    content: str
    kind: MemoryKind = MemoryKind.LONG_TERM
    tags: tuple[str, ...] = ()
    task_id: str | None = None
    importance: float | None = None
    ttl_s: float | None = None
    access_level: AccessLevel | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """A stored memory as the domain sees it."""

    id: str
    agent_id: str
    kind: MemoryKind
    content: str
    tags: tuple[str, ...]
    created_at: float
    expires_at: float | None
    task_id: str | None
    importance: float
    access_count: int
    last_accessed_at: float
    feedback: float
    access_level: AccessLevel | None
    metadata: Mapping[str, str]

    def payload(self) -> dict[str, Any]:
        """The vector-store payload of this record."""
        data: dict[str, Any] = {
            "agent_id": self.agent_id,
            "kind": self.kind.value,
            "content": self.content,
            "tags": list(self.tags),
            "created_at": self.created_at,
            "importance": self.importance,
            "access_count": self.access_count,
            "last_accessed_at": self.last_accessed_at,
            "feedback": self.feedback,
            "metadata": dict(self.metadata),
        }
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at
        if self.task_id is not None:
            data["task_id"] = self.task_id
        if self.access_level is not None:
            data["access_level"] = self.access_level.value
        return data

    @classmethod
    def from_payload(cls, point_id: str, p: Mapping[str, Any]) -> MemoryRecord:
        """Rebuild a record from a stored payload."""
        level = p.get("access_level")
        return cls(
            id=point_id,
            agent_id=str(p["agent_id"]),
            kind=MemoryKind(p["kind"]),
            content=str(p.get("content", "")),
            tags=tuple(p.get("tags") or ()),
            created_at=float(p["created_at"]),
            expires_at=float(p["expires_at"]) if p.get("expires_at") is not None else None,
            task_id=p.get("task_id"),
            importance=float(p.get("importance", _DEFAULT_IMPORTANCE)),
            access_count=int(p.get("access_count", 0)),
            last_accessed_at=float(p.get("last_accessed_at", p["created_at"])),
            feedback=float(p.get("feedback", 0.0)),
            access_level=AccessLevel(level) if level else None,
            metadata=dict(p.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class MemoryQuery:
    """What to retrieve. Empty ``kinds`` means every kind. ``since``/``until`` bound
    ``created_at``. ``filter`` may add conditions on ``tags``, ``task_id``,
    ``created_at`` and ``importance``."""

    text: str
    kinds: tuple[MemoryKind, ...] = ()
    tags: tuple[str, ...] = ()
    task_id: str | None = None
    since: float | None = None
    until: float | None = None
    filter: Filter | None = None
    limit: int = 10
    include_shared: bool = True


@dataclass(frozen=True, slots=True)
class RetrievedMemory:
    """A retrieval result with the scores that ranked it."""

    record: MemoryRecord
    score: float
    relevance: float
    vector_score: float
    keyword_score: float
    importance: float
    owned: bool


def check_agent_id(agent_id: str) -> str:
    """Return ``agent_id`` or raise :class:`InvalidArgument` if it is empty or too long."""
    if not isinstance(agent_id, str) or not agent_id or len(agent_id) > _MAX_AGENT_ID:
        raise InvalidArgument(
            f"agent id must be 1..{_MAX_AGENT_ID} characters", reason="BAD_AGENT_ID"
        )
    return agent_id


class MemoryStore:
    """Stores, retrieves, shares and forgets agent memories.

    Call :meth:`open` once before use (creates or opens the ``memories`` collection).
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        policy: PolicyPort,
        options: MemoryOptions | None = None,
        *,
        clock: Clock | None = None,
        events: MemoryEventSink | None = None,
        keywords: KeywordEncoder | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._policy = policy
        self._options = options or MemoryOptions()
        self._clock = clock or SystemClock()
        self._events = events or NullEventSink()
        self._keywords = keywords or KeywordEncoder()
        self._hybrid = HybridSearcher(store, self._keywords, self._options.hybrid)
        self._ranker = Ranker(self._options.ranking)
        self._importance = ImportanceModel(self._options.importance)

    @property
    def embedder(self) -> Embedder:
        """The embedder whose vectors this store holds."""
        return self._embedder

    async def open(self) -> None:
        """Create or open the memory collection."""
        await self._store.ensure_collection(memory_collection(self._embedder.dimension))

    # ---------------------------------------------------------------- writes

    async def store(self, agent_id: str, items: Sequence[NewMemory]) -> list[MemoryRecord]:
        """Embed and store memories of ``agent_id``; durable when it returns."""
        check_agent_id(agent_id)
        if not items:
            return []
        if len(items) > self._options.max_batch:
            raise InvalidArgument(
                f"at most {self._options.max_batch} memories per call, got {len(items)}",
                reason="BATCH_TOO_LARGE",
            )
        now = self._clock.now()
        records = [self._new_record(agent_id, item, now) for item in items]
        shared = [r for r in records if r.kind is MemoryKind.SHARED]
        if shared:
            await self._require_share(agent_id, shared)
        vectors = await self._embedder.embed([r.content for r in records])
        points = [
            VectorPoint(r.id, vectors[i], r.payload(), self._keywords.document(r.content))
            for i, r in enumerate(records)
        ]
        await self._store.upsert(MEMORIES, points)
        await self._emit("stored", agent_id, [r.id for r in records])
        return records

    def _new_record(self, agent_id: str, item: NewMemory, now: float) -> MemoryRecord:
        o = self._options
        content = item.content.strip() if isinstance(item.content, str) else ""
        if not content:
            raise InvalidArgument("memory content is empty", reason="EMPTY_CONTENT")
        if len(content) > o.max_content_chars:
            raise InvalidArgument(
                f"memory content has {len(content)} characters; at most {o.max_content_chars}",
                reason="CONTENT_TOO_LARGE",
            )
        tags = _check_tags(item.tags, o.max_tags, o.max_tag_chars)
        if item.importance is not None and not 0.0 <= item.importance <= 1.0:
            raise InvalidArgument(
                f"importance {item.importance} is outside 0..1", reason="BAD_IMPORTANCE"
            )
        expires_at = None
        if item.kind is MemoryKind.SHORT_TERM:
            ttl = item.ttl_s if item.ttl_s is not None else o.short_term_ttl_s
            if not 0 < ttl <= o.max_ttl_s:
                raise InvalidArgument(
                    f"ttl_s {ttl} is outside (0, {o.max_ttl_s}]", reason="BAD_TTL"
                )
            expires_at = now + ttl
        elif item.ttl_s is not None:
            raise InvalidArgument(
                f"ttl_s applies to short_term memory only, not {item.kind.value}", reason="BAD_TTL"
            )
        if item.kind is MemoryKind.WORKING and not item.task_id:
            raise InvalidArgument("working memory needs a task_id", reason="MISSING_TASK_ID")
        if item.kind is MemoryKind.SHARED and item.access_level is None:
            raise InvalidArgument(
                "shared memory needs an access_level (public, restricted, confidential, secret)",
                reason="MISSING_ACCESS_LEVEL",
            )
        if item.kind is not MemoryKind.SHARED and item.access_level is not None:
            raise InvalidArgument(
                f"access_level applies to shared memory only, not {item.kind.value}",
                reason="BAD_ACCESS_LEVEL",
            )
        if item.task_id is not None and not 0 < len(item.task_id) <= 256:
            raise InvalidArgument("task_id must be 1..256 characters", reason="BAD_TASK_ID")
        metadata = {str(k): str(v) for k, v in item.metadata.items()}
        if len(metadata) > 64:
            raise InvalidArgument("at most 64 metadata entries", reason="BAD_METADATA")
        return MemoryRecord(
            id=str(uuid.uuid4()),
            agent_id=agent_id,
            kind=item.kind,
            content=content,
            tags=tags,
            created_at=now,
            expires_at=expires_at,
            task_id=item.task_id,
            importance=_DEFAULT_IMPORTANCE if item.importance is None else item.importance,
            access_count=0,
            last_accessed_at=now,
            feedback=0.0,
            access_level=item.access_level,
            metadata=metadata,
        )

    async def forget(self, agent_id: str, memory_ids: Sequence[str]) -> int:
        """Delete the caller's own memories among ``memory_ids``; returns how many."""
        check_agent_id(agent_id)
        own = [r.id for r in await self._own(agent_id, memory_ids)]
        if own:
            await self._store.delete(MEMORIES, own)
            await self._emit("forgotten", agent_id, own)
        return len(own)

    async def clear_task(self, agent_id: str, task_id: str) -> int:
        """Delete the working memory of one task; returns how many memories went."""
        check_agent_id(agent_id)
        flt = Filter(
            must=(
                Match("agent_id", agent_id),
                Match("kind", MemoryKind.WORKING.value),
                Match("task_id", task_id),
            )
        )
        n = await self._store.count(MEMORIES, filter=flt)
        if n:
            await self._store.delete_where(MEMORIES, flt)
            await self._emit("forgotten", agent_id, (), {"task_id": task_id, "count": str(n)})
        return n

    async def feedback(self, agent_id: str, memory_id: str, score: float) -> MemoryRecord:
        """Record explicit feedback in [-1, 1] on one's own memory (moves its importance)."""
        if not -1.0 <= score <= 1.0:
            raise InvalidArgument(f"feedback {score} is outside -1..1", reason="BAD_FEEDBACK")
        record = await self._get_own(agent_id, memory_id)
        total = record.feedback + score
        await self._store.set_payload(MEMORIES, record.id, {"feedback": total})
        await self._emit("feedback", agent_id, [record.id], {"score": f"{score:g}"})
        return replace(record, feedback=total)

    async def share(self, agent_id: str, memory_id: str, level: AccessLevel) -> MemoryRecord:
        """Publish one's long-term memory at ``level`` (policy ``share_context``)."""
        record = await self._get_own(agent_id, memory_id)
        if record.kind not in (MemoryKind.LONG_TERM, MemoryKind.SHARED):
            raise FailedPrecondition(
                f"only long-term memory can be shared; this one is {record.kind.value}",
                reason="NOT_SHAREABLE",
            )
        shared = replace(record, kind=MemoryKind.SHARED, access_level=level)
        await self._require_share(agent_id, [shared])
        await self._store.set_payload(
            MEMORIES, record.id, {"kind": MemoryKind.SHARED.value, "access_level": level.value}
        )
        await self._emit("shared", agent_id, [record.id], {"access_level": level.value})
        return shared

    async def unshare(self, agent_id: str, memory_id: str) -> MemoryRecord:
        """Make a shared memory private (long-term) again."""
        record = await self._get_own(agent_id, memory_id)
        if record.kind is not MemoryKind.SHARED:
            return record
        await self._store.set_payload(
            MEMORIES, record.id, {"kind": MemoryKind.LONG_TERM.value, "access_level": None}
        )
        return replace(record, kind=MemoryKind.LONG_TERM, access_level=None)

    async def sweep(self) -> int:
        """Delete expired short-term memories of every agent; returns how many."""
        flt = Filter(must=(Range("expires_at", lte=self._clock.now()),))
        n = await self._store.count(MEMORIES, filter=flt)
        if n:
            await self._store.delete_where(MEMORIES, flt)
            log.info("swept %d expired short-term memories", n)
        return n

    # ---------------------------------------------------------------- reads

    async def get(self, agent_id: str, memory_id: str) -> MemoryRecord:
        """One memory the caller may see (its own, or shared and allowed)."""
        check_agent_id(agent_id)
        points = await self._store.get(MEMORIES, [_check_memory_id(memory_id)])
        now = self._clock.now()
        for p in points:
            record = MemoryRecord.from_payload(p.id, p.payload)
            if _expired(record, now):
                break
            if record.agent_id == agent_id:
                return record
            if record.kind is MemoryKind.SHARED and (await self._allowed(agent_id, [record]))[0]:
                return record
        raise NotFound(f"memory {memory_id} not found", reason="MEMORY_NOT_FOUND")

    async def recent(
        self, agent_id: str, *, kind: MemoryKind = MemoryKind.SHORT_TERM, limit: int = 20
    ) -> list[MemoryRecord]:
        """The caller's latest memories of ``kind``, newest first (unexpired only)."""
        check_agent_id(agent_id)
        if not 1 <= limit <= self._options.max_recent:
            raise InvalidArgument(
                f"limit {limit} is outside 1..{self._options.max_recent}", reason="BAD_LIMIT"
            )
        flt = all_of(Match("agent_id", agent_id), Match("kind", kind.value), self._unexpired())
        records: list[MemoryRecord] = []
        offset = None
        # Bounded scan: short-term memory is small by construction (TTL); the cap keeps a
        # pathological agent from making this unbounded.
        while len(records) < self._options.max_recent:
            page, offset = await self._store.scroll(MEMORIES, filter=flt, limit=256, offset=offset)
            records.extend(MemoryRecord.from_payload(p.id, p.payload) for p in page)
            if offset is None:
                break
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[:limit]

    async def retrieve(self, agent_id: str, query: MemoryQuery) -> list[RetrievedMemory]:
        """Memories relevant to ``query.text``, best first (hybrid search, then ranking)."""
        vector = (await self._embedder.embed([_check_query_text(query.text)]))[0]
        return await self.retrieve_with_vector(agent_id, query, vector)

    async def retrieve_with_vector(
        self, agent_id: str, query: MemoryQuery, vector: npt.NDArray[np.float32]
    ) -> list[RetrievedMemory]:
        """:meth:`retrieve` with the query already embedded (the RAG pipeline embeds once)."""
        check_agent_id(agent_id)
        if not 1 <= query.limit <= 100:
            raise InvalidArgument(f"limit {query.limit} is outside 1..100", reason="BAD_LIMIT")
        scope = self._scope_filter(agent_id, query)
        candidates = max(self._options.hybrid.candidates, query.limit * 4)
        hits = await self._hybrid.search(
            MEMORIES, vector, query.text, filter=scope, candidates=candidates
        )
        hits = await self._visible(agent_id, hits)
        now = self._clock.now()
        results = [self._rank(agent_id, h, now) for h in hits]
        results.sort(key=lambda r: r.score, reverse=True)
        results = results[: query.limit]
        await self._touch(agent_id, [r.record for r in results], now)
        return results

    # ---------------------------------------------------------------- internals

    def _scope_filter(self, agent_id: str, query: MemoryQuery) -> Filter:
        if query.filter is not None:
            _check_user_filter(query.filter)
        kinds = tuple(dict.fromkeys(query.kinds)) or tuple(MemoryKind)
        own = all_of(Match("agent_id", agent_id), _kinds(kinds))
        visible: Condition = own
        if query.include_shared and MemoryKind.SHARED in kinds:
            # Other agents' memory: shared kind only; the policy filters it afterwards.
            others = Filter(
                must=(Match("kind", MemoryKind.SHARED.value),),
                must_not=(Match("agent_id", agent_id),),
            )
            visible = Filter(should=(own, others))
        conditions: list[Condition | Filter | None] = [visible, self._unexpired()]
        if query.tags:
            conditions.append(MatchAny("tags", _check_tags(query.tags, 32, 64)))
        if query.task_id:
            conditions.append(Match("task_id", query.task_id))
        if query.since is not None or query.until is not None:
            conditions.append(Range("created_at", gte=query.since, lte=query.until))
        conditions.append(query.filter)
        return all_of(*conditions)

    def _unexpired(self) -> Filter:
        return Filter(must_not=(Range("expires_at", lte=self._clock.now()),))

    def _rank(self, agent_id: str, hit: HybridHit, now: float) -> RetrievedMemory:
        record = MemoryRecord.from_payload(hit.id, hit.payload)
        if record.kind in (MemoryKind.LONG_TERM, MemoryKind.SHARED):
            importance = self._importance.score(
                base=record.importance,
                access_count=record.access_count,
                last_used_at=record.last_accessed_at,
                feedback=record.feedback,
                now=now,
            )
        else:
            importance = record.importance
        score = self._ranker.score(
            relevance=hit.relevance, timestamp=record.created_at, importance=importance, now=now
        )
        return RetrievedMemory(
            record=record,
            score=score,
            relevance=hit.relevance,
            vector_score=hit.vector_score,
            keyword_score=hit.keyword_score,
            importance=importance,
            owned=record.agent_id == agent_id,
        )

    async def _visible(self, agent_id: str, hits: list[HybridHit]) -> list[HybridHit]:
        """Drop other agents' memories the policy does not allow (defence in depth: also
        drops anything of another agent that is not shared)."""
        foreign = [h for h in hits if h.payload.get("agent_id") != agent_id]
        if not foreign:
            return hits
        records = [
            MemoryRecord.from_payload(h.id, h.payload)
            for h in foreign
            if h.payload.get("kind") == MemoryKind.SHARED.value
        ]
        allowed_ids = {
            r.id
            for r, ok in zip(records, await self._allowed(agent_id, records), strict=True)
            if ok
        }
        return [h for h in hits if h.payload.get("agent_id") == agent_id or h.id in allowed_ids]

    async def _allowed(self, agent_id: str, records: Sequence[MemoryRecord]) -> list[bool]:
        if not records:
            return []
        requests = [
            AccessRequest(
                principal=agent_id,
                action="read_context",
                owner=r.agent_id,
                access_level=r.access_level or AccessLevel.SECRET,
                memory_type=MemoryKind.SHARED.value,
                tags=r.tags,
            )
            for r in records
        ]
        unique = list(dict.fromkeys(requests))
        decisions = await self._policy.decide(unique)
        if len(decisions) != len(unique):
            raise FailedPrecondition(
                f"policy answered {len(decisions)} decisions for {len(unique)} requests",
                reason="POLICY_BAD_ANSWER",
            )
        by_request = {req: d.allowed for req, d in zip(unique, decisions, strict=True)}
        return [by_request[req] for req in requests]

    async def _require_share(self, agent_id: str, records: Sequence[MemoryRecord]) -> None:
        requests = list(
            dict.fromkeys(
                AccessRequest(
                    principal=agent_id,
                    action="share_context",
                    owner=agent_id,
                    access_level=r.access_level or AccessLevel.SECRET,
                    memory_type=MemoryKind.SHARED.value,
                    tags=r.tags,
                )
                for r in records
            )
        )
        decisions = await self._policy.decide(requests)
        for req, decision in zip(requests, decisions, strict=True):
            if not decision.allowed:
                raise PermissionDenied(
                    f"sharing at {req.access_level.value} is not allowed: {decision.reason}",
                    reason="SHARE_DENIED",
                    details={"access_level": req.access_level.value},
                )

    async def _own(self, agent_id: str, memory_ids: Sequence[str]) -> list[MemoryRecord]:
        if len(memory_ids) > self._options.max_batch:
            raise InvalidArgument(
                f"at most {self._options.max_batch} ids per call", reason="BATCH_TOO_LARGE"
            )
        ids = [_check_memory_id(i) for i in memory_ids]
        points = await self._store.get(MEMORIES, ids) if ids else []
        return [
            MemoryRecord.from_payload(p.id, p.payload)
            for p in points
            if p.payload.get("agent_id") == agent_id
        ]

    async def _get_own(self, agent_id: str, memory_id: str) -> MemoryRecord:
        check_agent_id(agent_id)
        own = await self._own(agent_id, [memory_id])
        if not own or _expired(own[0], self._clock.now()):
            raise NotFound(f"memory {memory_id} not found", reason="MEMORY_NOT_FOUND")
        return own[0]

    async def _touch(self, agent_id: str, records: Sequence[MemoryRecord], now: float) -> None:
        """Count a use of the caller's own long-term memories (frequency and recency of
        use feed their importance). Concurrent retrievals may lose an increment: the count
        is a ranking signal, not a ledger."""
        for r in records:
            if r.agent_id == agent_id and r.kind in (MemoryKind.LONG_TERM, MemoryKind.SHARED):
                await self._store.set_payload(
                    MEMORIES, r.id, {"access_count": r.access_count + 1, "last_accessed_at": now}
                )

    async def _emit(
        self,
        kind: str,
        agent_id: str,
        ids: Sequence[str],
        details: dict[str, str] | None = None,
    ) -> None:
        await self._events.emit(
            MemoryEvent(kind, agent_id, tuple(ids), self._clock.now(), details or {})
        )


def _kinds(kinds: tuple[MemoryKind, ...]) -> Condition | None:
    if set(kinds) == set(MemoryKind):
        return None
    return MatchAny("kind", tuple(k.value for k in kinds))


def _expired(record: MemoryRecord, now: float) -> bool:
    return record.expires_at is not None and record.expires_at <= now


def _check_tags(tags: Sequence[str], max_tags: int, max_chars: int) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise InvalidArgument("tags must be a list of strings", reason="BAD_TAGS")
    if len(tags) > max_tags:
        raise InvalidArgument(f"at most {max_tags} tags, got {len(tags)}", reason="BAD_TAGS")
    for tag in tags:
        if not isinstance(tag, str) or not 0 < len(tag) <= max_chars:
            raise InvalidArgument(
                f"tag {tag!r} must be 1..{max_chars} characters", reason="BAD_TAGS"
            )
    return tuple(dict.fromkeys(tags))


def _check_memory_id(memory_id: str) -> str:
    try:
        return str(uuid.UUID(memory_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(
            f"memory id {memory_id!r} is not a UUID", reason="BAD_MEMORY_ID"
        ) from None


def _check_query_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("query text is empty", reason="EMPTY_QUERY")
    if len(text) > 4000:
        raise InvalidArgument(
            f"query text has {len(text)} characters; at most 4000", reason="QUERY_TOO_LONG"
        )
    return text


def _check_user_filter(flt: Filter) -> None:
    """Refuse caller filters that name isolation fields (they could widen the scope)."""
    stack: list[Condition] = [flt]
    while stack:
        cond = stack.pop()
        if isinstance(cond, Filter):
            stack.extend((*cond.must, *cond.should, *cond.must_not))
        elif isinstance(cond, HasId):
            continue
        elif cond.key in _RESERVED_FIELDS:
            raise InvalidArgument(
                f"filters may not name {cond.key!r}: use the query's kinds and the caller's "
                f"identity instead; reserved: {', '.join(sorted(_RESERVED_FIELDS))}",
                reason="RESERVED_FILTER_FIELD",
                details={"field": cond.key},
            )
