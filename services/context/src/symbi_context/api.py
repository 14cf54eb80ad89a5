"""The context service's operations on ``symbi.context.v1`` messages, for every edge.

The gRPC servicer and the bus responders both call :class:`ContextApi` with the request and
a :class:`~symbi_context.audit.Caller`; this module decides whose memory a request touches
(the trust rule below), gates writes on the policy when the caller requires it, and turns
messages into domain calls and back. It imports neither grpc nor nats.

Trust rule (contract C4): over gRPC and from bus senders of role ``service`` or ``node`` (a
node vouches for the agent it runs) the request's ``agent_id`` is believed; a sender of role
``agent`` acts as itself — an empty ``agent_id`` means the sender, a different one is
refused (PERMISSION_DENIED) and audited.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from symbi.context.v1 import context_pb2 as pb
from symbi_common.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

from . import convert
from .audit import AuditEventSink, Caller
from .knowledge import KnowledgeBase, KnowledgeQuery, NewDocument
from .memory import MemoryKind, MemoryQuery, MemoryStore
from .options import HybridWeights
from .policy_gate import KNOWLEDGE_TYPE, PolicyServicePort
from .ports import AccessLevel
from .rag import RagPipeline

__all__ = ["PLATFORM_OWNER", "ContextApi", "IngestLimits"]

log = logging.getLogger(__name__)

#: Owner of documents ingested over gRPC without an agent id: the platform's shared
#: knowledge base (agents read it as they read any other owner's documents: by policy).
PLATFORM_OWNER = "platform"

_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEFAULT_LIMIT = 10


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Bounds of one ingest stream."""

    max_document_bytes: int
    max_documents: int


@dataclass(slots=True)
class _PendingDocument:
    """One document being received over an ingest stream."""

    document_id: str
    source: str
    content_type: str
    title: str
    tags: tuple[str, ...]
    access: int
    importance: float | None
    parts: list[bytes] = field(default_factory=list)
    size: int = 0

    @classmethod
    def start(cls, msg: pb.IngestRequest) -> _PendingDocument:
        return cls(
            document_id=msg.document_id,
            source=msg.source,
            content_type=msg.content_type,
            title=msg.title,
            tags=tuple(msg.tags),
            access=msg.access,
            importance=msg.importance if msg.HasField("importance") else None,
        )

    def check_same(self, msg: pb.IngestRequest) -> None:
        """Later messages may repeat the document's metadata but not change it."""
        changed = [
            name
            for name, given, mine in (
                ("document_id", msg.document_id, self.document_id),
                ("source", msg.source, self.source),
                ("content_type", msg.content_type, self.content_type),
                ("title", msg.title, self.title),
            )
            if given and given != mine
        ]
        if msg.access and msg.access != self.access:
            changed.append("access")
        if msg.tags and tuple(msg.tags) != self.tags:
            changed.append("tags")
        if msg.HasField("importance") and msg.importance != self.importance:
            changed.append("importance")
        if changed:
            raise InvalidArgument(
                f"ingest: {', '.join(changed)} changed in the middle of a document; end the "
                "document (end_of_document) before starting another",
                reason="INGEST_METADATA_CHANGED",
            )

    def add(self, chunk: bytes, limit: int) -> None:
        self.size += len(chunk)
        if self.size > limit:
            raise InvalidArgument(
                f"document {self.document_id or '(new)'} exceeds {limit} bytes; split it, or "
                "raise context.max_document_bytes",
                reason="DOCUMENT_TOO_LARGE",
                details={"limit": str(limit)},
            )
        if chunk:
            self.parts.append(chunk)

    def to_domain(self) -> NewDocument:
        level = convert.access_from_proto(self.access) or AccessLevel.PUBLIC
        return NewDocument(
            content=b"".join(self.parts),
            format=convert.document_format(self.content_type),
            title=self.title,
            source=self.source,
            doc_id=self.document_id or None,
            tags=self.tags,
            access_level=level,
            importance=0.5 if self.importance is None else self.importance,
        )


class ContextApi:
    """Requests in, responses out; one instance per process."""

    def __init__(
        self,
        memory: MemoryStore,
        knowledge: KnowledgeBase,
        rag: RagPipeline,
        policy: PolicyServicePort,
        audit: AuditEventSink,
        *,
        ingest_limits: IngestLimits,
        default_weights: HybridWeights,
    ) -> None:
        self._memory = memory
        self._knowledge = knowledge
        self._rag = rag
        self._policy = policy
        self._audit = audit
        self._ingest = ingest_limits
        self._default_weights = default_weights

    # ---------------------------------------------------------------- identity

    async def agent_for(self, caller: Caller, claimed: str, *, owner_default: str = "") -> str:
        """Whose context the request touches (the trust rule of the module docstring)."""
        if caller.role == "agent":
            if claimed and claimed != caller.principal:
                await self._audit.record(
                    "context.request_refused",
                    {
                        "reason": "AGENT_ID_MISMATCH",
                        "claimed_agent_id": claimed[:128],
                        **caller.describe(),
                    },
                    agent_id=caller.principal,
                )
                raise PermissionDenied(
                    f"an agent acts as itself: {caller.principal} may not act for {claimed[:64]!r}",
                    reason="AGENT_ID_MISMATCH",
                )
            agent = caller.principal
        elif caller.transport == "bus" and caller.role not in ("node", "service"):
            raise PermissionDenied(
                f"senders of role {caller.role!r} may not use the context service",
                reason="ROLE_NOT_ALLOWED",
            )
        else:
            agent = claimed or owner_default
            if not agent:
                raise InvalidArgument("agent_id is required", reason="MISSING_AGENT_ID")
        if not _AGENT_ID.match(agent):
            raise InvalidArgument(
                "agent_id must be 1-64 letters, digits, '-' or '_'", reason="BAD_AGENT_ID"
            )
        if agent == PLATFORM_OWNER and caller.transport != "grpc":
            raise PermissionDenied(
                f"{PLATFORM_OWNER!r} is the platform's own knowledge base, written over gRPC only",
                reason="RESERVED_AGENT_ID",
            )
        return agent

    async def _authorize_writes(
        self, caller: Caller, agent: str, memory_types: Sequence[str]
    ) -> None:
        if caller.check_writes:
            await self._policy.authorize_writes(agent, memory_types)

    # ---------------------------------------------------------------- memory

    async def store(self, caller: Caller, req: pb.StoreContextRequest) -> pb.StoreContextResponse:
        if req.HasField("item") and req.items:
            raise InvalidArgument("give item or items, not both", reason="AMBIGUOUS_REQUEST")
        items = [req.item] if req.HasField("item") else list(req.items)
        if not items:
            raise InvalidArgument("no memory to store", reason="EMPTY_REQUEST")
        claimed = {i.agent_id for i in items if i.agent_id}
        if req.agent_id:
            claimed.add(req.agent_id)
        if len(claimed) > 1:
            raise InvalidArgument(
                "every memory of one request belongs to one agent", reason="MIXED_AGENTS"
            )
        agent = await self.agent_for(caller, next(iter(claimed), ""))
        ttl = float(req.ttl_s) if req.HasField("item") else 0.0
        new = [convert.new_memory(item, ttl) for item in items]
        await self._authorize_writes(caller, agent, [m.kind.value for m in new])
        records = await self._memory.store(agent, new)
        return pb.StoreContextResponse(
            id=records[0].id,
            ids=[r.id for r in records],
            items=[convert.memory_to_proto(r) for r in records],
        )

    async def retrieve(
        self, caller: Caller, req: pb.RetrieveContextRequest
    ) -> pb.RetrieveContextResponse:
        agent = await self.agent_for(caller, req.agent_id)
        query = MemoryQuery(
            text=req.query,
            kinds=tuple(convert.kind_from_proto(t) for t in req.types),
            tags=tuple(req.tags),
            task_id=req.task_id or None,
            since=req.since_ms / 1000 if req.since_ms else None,
            until=req.until_ms / 1000 if req.until_ms else None,
            filter=convert.filter_from_json(req.filter),
            limit=req.limit or _DEFAULT_LIMIT,
            include_shared=req.include_shared,
        )
        vector = convert.query_vector(req.query_vector)
        if vector is None:
            found = await self._memory.retrieve(agent, query)
        else:
            found = await self._memory.retrieve_with_vector(agent, query, vector)
        return pb.RetrieveContextResponse(items=[convert.scored_to_proto(m) for m in found])

    async def get_memory(self, caller: Caller, req: pb.GetMemoryRequest) -> pb.MemoryItem:
        agent = await self.agent_for(caller, req.agent_id)
        return convert.memory_to_proto(await self._memory.get(agent, req.memory_id))

    async def share(self, caller: Caller, req: pb.ShareMemoryRequest) -> pb.MemoryItem:
        agent = await self.agent_for(caller, req.agent_id)
        level = convert.access_from_proto(req.access)
        if level is None:
            record = await self._memory.unshare(agent, req.memory_id)
        else:
            record = await self._memory.share(agent, req.memory_id, level)
        return convert.memory_to_proto(record)

    async def feedback(self, caller: Caller, req: pb.FeedbackRequest) -> pb.MemoryItem:
        agent = await self.agent_for(caller, req.agent_id)
        await self._authorize_writes(caller, agent, [MemoryKind.LONG_TERM.value])
        return convert.memory_to_proto(await self._memory.feedback(agent, req.memory_id, req.score))

    async def forget(self, caller: Caller, req: pb.ForgetRequest) -> pb.ForgetResponse:
        agent = await self.agent_for(caller, req.agent_id)
        ids = list(dict.fromkeys(req.ids))
        if not ids and not req.task_id:
            raise InvalidArgument("nothing to forget: give ids or task_id", reason="EMPTY_REQUEST")
        kinds = ["memory"] + ([KNOWLEDGE_TYPE] if ids else [])
        await self._authorize_writes(caller, agent, kinds)
        memory_ids = [i for i in ids if _is_uuid(i)]
        memories = await self._memory.forget(agent, memory_ids) if memory_ids else 0
        documents = 0
        for doc_id in ids:
            try:
                await self._knowledge.delete(agent, doc_id)
            except NotFound:
                continue
            documents += 1
        working = await self._memory.clear_task(agent, req.task_id) if req.task_id else 0
        return pb.ForgetResponse(
            deleted=memories + documents, memories=memories, documents=documents, working=working
        )

    # ---------------------------------------------------------------- knowledge

    async def search(
        self, caller: Caller, req: pb.SearchKnowledgeRequest
    ) -> pb.SearchKnowledgeResponse:
        agent = await self.agent_for(caller, req.agent_id)
        weights = None
        if req.vector_weight or req.keyword_weight:
            weights = HybridWeights(
                vector=req.vector_weight,
                keyword=req.keyword_weight,
                candidates=self._default_weights.candidates,
            )
        query = KnowledgeQuery(
            text=req.query,
            tags=tuple(req.tags),
            doc_ids=tuple(req.document_ids),
            filter=convert.filter_from_json(req.filter),
            limit=req.limit or _DEFAULT_LIMIT,
            include_others=not req.own_only,
            weights=weights,
        )
        vector = convert.query_vector(req.query_vector)
        if vector is None:
            hits = await self._knowledge.search(agent, query)
        else:
            hits = await self._knowledge.search_with_vector(agent, query, vector)
        return pb.SearchKnowledgeResponse(passages=[convert.hit_to_proto(h) for h in hits])

    async def ingest(
        self, caller: Caller, requests: AsyncIterator[pb.IngestRequest]
    ) -> pb.IngestResponse:
        """Documents from a stream of pieces (see IngestRequest in context.proto)."""
        owner: str | None = None
        claimed = ""
        pending: _PendingDocument | None = None
        response = pb.IngestResponse()
        async for msg in requests:
            if owner is None:
                claimed = msg.agent_id
                default = PLATFORM_OWNER if caller.transport == "grpc" else ""
                owner = await self.agent_for(caller, claimed, owner_default=default)
                await self._register_dataset(caller, owner)
                await self._authorize_writes(caller, owner, [KNOWLEDGE_TYPE])
            elif msg.agent_id and msg.agent_id != claimed:
                raise InvalidArgument("one ingest stream has one owner", reason="MIXED_AGENTS")
            if pending is None:
                if len(response.documents) >= self._ingest.max_documents:
                    raise InvalidArgument(
                        f"at most {self._ingest.max_documents} documents per ingest stream",
                        reason="TOO_MANY_DOCUMENTS",
                    )
                pending = _PendingDocument.start(msg)
            else:
                pending.check_same(msg)
            pending.add(msg.chunk, self._ingest.max_document_bytes)
            if msg.end_of_document:
                await self._ingest_one(owner, pending, response)
                pending = None
        if owner is None:
            raise InvalidArgument("the ingest stream was empty", reason="EMPTY_REQUEST")
        if pending is not None:
            await self._ingest_one(owner, pending, response)
        return response

    async def _register_dataset(self, caller: Caller, owner: str) -> None:
        """The owner's knowledge dataset must be a known policy entity before anything can
        be decided about it: required before a write check, best effort otherwise (readers
        are denied — fail closed — until a later ingest registers it)."""
        try:
            await self._policy.ensure_dataset(owner)
        except Unavailable as exc:
            if caller.check_writes:
                raise
            log.warning("knowledge of %s not registered with the policy yet: %s", owner, exc)

    async def _ingest_one(
        self, owner: str, pending: _PendingDocument, response: pb.IngestResponse
    ) -> None:
        result = await self._knowledge.ingest(owner, pending.to_domain())
        response.documents.append(convert.ingest_result_to_proto(result))
        response.document_ids.append(result.doc_id)
        response.chunks += result.chunks
        response.duplicates += int(result.deduplicated)

    async def get_document(self, caller: Caller, req: pb.GetDocumentRequest) -> pb.Document:
        owner = await self.agent_for(
            caller, req.agent_id, owner_default=PLATFORM_OWNER if caller.transport == "grpc" else ""
        )
        return convert.document_to_proto(await self._knowledge.document(owner, req.document_id))

    # ---------------------------------------------------------------- answers

    async def ask(self, caller: Caller, req: pb.AskRequest) -> pb.AskResponse:
        agent = await self.agent_for(caller, req.agent_id)
        answer = await self._rag.ask(
            agent, req.question, passages=req.limit or None, scope=req.scope or None
        )
        return convert.answer_to_proto(answer)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
