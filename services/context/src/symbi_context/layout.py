"""The collection layouts of the context service, identical on every backend."""

from __future__ import annotations

from .vector_store import CollectionSpec, FieldKind

__all__ = ["KNOWLEDGE", "MEMORIES", "knowledge_collection", "memory_collection"]

MEMORIES = "memories"
KNOWLEDGE = "knowledge"


def memory_collection(dimension: int) -> CollectionSpec:
    """Agent memory: partitioned by ``agent_id``; filterable by kind, tags, task and time."""
    return CollectionSpec(
        name=MEMORIES,
        dimension=dimension,
        fields={
            "agent_id": FieldKind.KEYWORD,
            "kind": FieldKind.KEYWORD,
            "tags": FieldKind.KEYWORD,
            "task_id": FieldKind.KEYWORD,
            "access_level": FieldKind.KEYWORD,
            "created_at": FieldKind.FLOAT,
            "expires_at": FieldKind.FLOAT,
            "importance": FieldKind.FLOAT,
        },
        tenant_field="agent_id",
    )


def knowledge_collection(dimension: int) -> CollectionSpec:
    """Knowledge-base chunks: partitioned by ``owner``; filterable by document, tags, level
    and ingestion time."""
    return CollectionSpec(
        name=KNOWLEDGE,
        dimension=dimension,
        fields={
            "owner": FieldKind.KEYWORD,
            "doc_id": FieldKind.KEYWORD,
            "content_hash": FieldKind.KEYWORD,
            "chunk_hash": FieldKind.KEYWORD,
            "tags": FieldKind.KEYWORD,
            "format": FieldKind.KEYWORD,
            "access_level": FieldKind.KEYWORD,
            "ingested_at": FieldKind.FLOAT,
            "chunk_index": FieldKind.INTEGER,
        },
        tenant_field="owner",
    )
