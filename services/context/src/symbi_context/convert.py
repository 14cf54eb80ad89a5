"""Pure converters between ``symbi.context.v1`` messages and the domain's types."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from symbi.context.v1 import context_pb2 as pb
from symbi_common.errors import InvalidArgument

from .chunking import DocumentFormat
from .filters import Filter, parse_filter
from .knowledge import DocumentInfo, IngestResult, KnowledgeHit
from .memory import MemoryKind, MemoryRecord, NewMemory, RetrievedMemory
from .ports import AccessLevel
from .rag import Answer, Source

__all__ = [
    "access_from_proto",
    "access_to_proto",
    "answer_to_proto",
    "document_format",
    "document_to_proto",
    "filter_from_json",
    "hit_to_proto",
    "ingest_result_to_proto",
    "kind_from_proto",
    "kind_to_proto",
    "memory_to_proto",
    "new_memory",
    "query_vector",
    "scored_to_proto",
]

_KINDS = {
    pb.MEMORY_TYPE_SHORT_TERM: MemoryKind.SHORT_TERM,
    pb.MEMORY_TYPE_LONG_TERM: MemoryKind.LONG_TERM,
    pb.MEMORY_TYPE_WORKING: MemoryKind.WORKING,
    pb.MEMORY_TYPE_SHARED: MemoryKind.SHARED,
}
_KIND_TO_PROTO = {v: k for k, v in _KINDS.items()}
_LEVELS = {
    pb.ACCESS_LEVEL_PUBLIC: AccessLevel.PUBLIC,
    pb.ACCESS_LEVEL_RESTRICTED: AccessLevel.RESTRICTED,
    pb.ACCESS_LEVEL_CONFIDENTIAL: AccessLevel.CONFIDENTIAL,
    pb.ACCESS_LEVEL_SECRET: AccessLevel.SECRET,
}
_LEVEL_TO_PROTO = {v: k for k, v in _LEVELS.items()}
_FORMATS = {
    "": DocumentFormat.TEXT,
    "text": DocumentFormat.TEXT,
    "text/plain": DocumentFormat.TEXT,
    "markdown": DocumentFormat.MARKDOWN,
    "text/markdown": DocumentFormat.MARKDOWN,
    "json": DocumentFormat.JSON,
    "application/json": DocumentFormat.JSON,
}
_FORMAT_TO_TYPE = {
    DocumentFormat.TEXT: "text/plain",
    DocumentFormat.MARKDOWN: "text/markdown",
    DocumentFormat.JSON: "application/json",
}
_MAX_FILTER_CHARS = 16_384


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else round(seconds * 1000)


def kind_from_proto(value: int) -> MemoryKind:
    """A memory type; INVALID_ARGUMENT for unspecified or unknown numbers."""
    try:
        return _KINDS[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(
            f"memory type {value} is not one of short_term, long_term, working, shared",
            reason="BAD_MEMORY_TYPE",
        ) from None


def kind_to_proto(kind: MemoryKind) -> pb.MemoryType:
    return _KIND_TO_PROTO[kind]


def access_from_proto(value: int) -> AccessLevel | None:
    """None for ACCESS_LEVEL_UNSPECIFIED; INVALID_ARGUMENT for unknown numbers."""
    if value == pb.ACCESS_LEVEL_UNSPECIFIED:
        return None
    try:
        return _LEVELS[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(
            f"access level {value} is not one of public, restricted, confidential, secret",
            reason="BAD_ACCESS_LEVEL",
        ) from None


def access_to_proto(level: AccessLevel | None) -> pb.AccessLevel:
    return pb.ACCESS_LEVEL_UNSPECIFIED if level is None else _LEVEL_TO_PROTO[level]


def document_format(content_type: str) -> DocumentFormat:
    """text/plain | text/markdown | application/json (or text, markdown, json; parameters
    such as ``; charset=utf-8`` are ignored)."""
    key = content_type.split(";", 1)[0].strip().lower()
    try:
        return _FORMATS[key]
    except KeyError:
        raise InvalidArgument(
            f"content type {content_type!r} is not supported; allowed: text/plain, "
            "text/markdown, application/json",
            reason="BAD_CONTENT_TYPE",
        ) from None


def _metadata_from_struct(struct: struct_pb2.Struct) -> dict[str, str]:
    data = MessageToDict(struct)
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def new_memory(item: pb.MemoryItem, ttl_s: float = 0.0) -> NewMemory:
    """The domain's memory to store from a request item (ids and times are assigned later)."""
    level = access_from_proto(item.access)
    if item.type == pb.MEMORY_TYPE_UNSPECIFIED:
        kind = MemoryKind.SHARED if level is not None else MemoryKind.LONG_TERM
    else:
        kind = kind_from_proto(item.type)
    ttl = item.ttl_s or ttl_s
    if ttl < 0:
        raise InvalidArgument(f"ttl_s {ttl} is negative", reason="BAD_TTL")
    return NewMemory(
        content=item.content,
        kind=kind,
        tags=tuple(item.tags),
        task_id=item.task_id or None,
        importance=item.importance if item.HasField("importance") else None,
        ttl_s=ttl or None,
        access_level=level,
        metadata=_metadata_from_struct(item.metadata),
    )


def memory_to_proto(record: MemoryRecord) -> pb.MemoryItem:
    item = pb.MemoryItem(
        id=record.id,
        agent_id=record.agent_id,
        type=kind_to_proto(record.kind),
        content=record.content,
        tags=list(record.tags),
        importance=record.importance,
        access=access_to_proto(record.access_level),
        task_id=record.task_id or "",
        created_at_ms=_ms(record.created_at),
        expires_at_ms=_ms(record.expires_at),
        feedback=record.feedback,
        access_count=record.access_count,
        last_accessed_at_ms=_ms(record.last_accessed_at),
    )
    item.metadata.update(dict(record.metadata))
    return item


def scored_to_proto(memory: RetrievedMemory) -> pb.ScoredMemory:
    return pb.ScoredMemory(
        item=memory_to_proto(memory.record),
        score=memory.score,
        relevance=memory.relevance,
        vector_score=memory.vector_score,
        keyword_score=memory.keyword_score,
        importance=memory.importance,
        owned=memory.owned,
    )


def hit_to_proto(hit: KnowledgeHit) -> pb.Passage:
    return pb.Passage(
        document_id=hit.doc_id,
        chunk_id=hit.id,
        text=hit.text,
        score=hit.score,
        source=hit.source,
        title=hit.title,
        section=hit.section,
        owner=hit.owner,
        relevance=hit.relevance,
        vector_score=hit.vector_score,
        keyword_score=hit.keyword_score,
        kind="knowledge",
        chunk_index=hit.chunk_index,
    )


def source_to_proto(source: Source) -> pb.Passage:
    return pb.Passage(
        document_id=source.doc_id or "",
        chunk_id=source.id,
        text=source.text,
        score=source.score,
        title=source.title,
        section=source.section,
        owner=source.owner,
        relevance=source.relevance,
        vector_score=source.vector_score,
        keyword_score=source.keyword_score,
        number=source.number,
        kind=source.kind,
    )


def answer_to_proto(answer: Answer) -> pb.AskResponse:
    return pb.AskResponse(
        answer=answer.text,
        sources=[source_to_proto(s) for s in answer.sources],
        mode=answer.mode,
        timings_ms=dict(answer.timings_ms),
    )


def ingest_result_to_proto(result: IngestResult) -> pb.IngestedDocument:
    return pb.IngestedDocument(
        document_id=result.doc_id,
        chunks=result.chunks,
        embedded=result.embedded,
        reused=result.reused,
        removed=result.removed,
        deduplicated=result.deduplicated,
        content_hash=result.content_hash,
    )


def document_to_proto(info: DocumentInfo) -> pb.Document:
    return pb.Document(
        document_id=info.doc_id,
        owner=info.owner,
        title=info.title,
        source=info.source,
        content_type=_FORMAT_TO_TYPE[info.format],
        content_hash=info.content_hash,
        tags=list(info.tags),
        access=access_to_proto(info.access_level),
        ingested_at_ms=_ms(info.ingested_at),
        chunks=info.chunks,
    )


def filter_from_json(text: str) -> Filter | None:
    """A caller's filter from its JSON text (None when empty); INVALID_ARGUMENT naming the
    problem when it is not JSON or not the filter shape."""
    if not text.strip():
        return None
    if len(text) > _MAX_FILTER_CHARS:
        raise InvalidArgument(
            f"filter has {len(text)} characters; at most {_MAX_FILTER_CHARS}",
            reason="MALFORMED_FILTER",
        )
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"filter is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            reason="MALFORMED_FILTER",
        ) from None
    return parse_filter(data)


def query_vector(values: Sequence[float]) -> npt.NDArray[np.float32] | None:
    """A caller-made query embedding (None when empty). Its size is checked against the
    collection by the store; it is normalised here like the service's own embeddings."""
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InvalidArgument(
            "query vector holds NaN or infinite values", reason="MALFORMED_VECTOR"
        )
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        raise InvalidArgument("query vector is all zeros", reason="MALFORMED_VECTOR")
    out: npt.NDArray[np.float32] = arr / norm
    return out
