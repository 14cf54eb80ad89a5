"""Settings of the context service: the shared sections plus the extended ``[context]``.

``[context]`` keeps the original runtime's keys (``vector_db_url``, ``embedding_dimension``,
``context_cache_size``, ``knowledge_retention_days``) and adds the service's own. Every key is
also ``SYMBI_CONTEXT__<KEY>`` in the environment; ``QDRANT_URL`` stands in for
``vector_db_url`` when that is unset.

Combinations a single field cannot check (a dimension the embedder cannot make, a server
backend without a URL, an OpenAI embedder without a model) are refused by
:meth:`ContextServiceSection.problems` when the service is built: exit status 2 with a
message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from symbi_common.config import (
    ByteSize,
    ContextSection,
    GrpcSection,
    ServiceSettings,
    TelemetrySection,
)

__all__ = ["MINILM_DIMENSION", "ContextServiceSection", "ContextSettings"]

#: all-MiniLM-L6-v2 makes 384-dimensional vectors.
MINILM_DIMENSION = 384


class ContextServiceSection(ContextSection):
    """``[context]``: storage backend, embedder, limits, retention and housekeeping."""

    # ---- vector store
    #: ``embedded``: Qdrant's engine in process under ``store_path``; ``server``: a Qdrant
    #: server at ``vector_db_url`` (or ``$QDRANT_URL``).
    backend: Literal["embedded", "server"] = "embedded"
    #: Directory of the embedded store; default ``<data_dir>/context``.
    store_path: Path | None = None
    vector_db_api_key: str | None = None
    vector_db_timeout_s: float = Field(5.0, gt=0, le=300)
    collection_prefix: str = Field("symbi_", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    hnsw_m: int = Field(16, ge=4, le=128)
    hnsw_ef: int = Field(128, ge=8, le=4096)
    #: New points a collection receives before housekeeping rebuilds its HNSW graph.
    optimize_after: int = Field(5_000, ge=1)

    # ---- embeddings
    embedding_kind: Literal["minilm", "openai", "hashing"] = "minilm"
    embedding_url: str | None = None
    embedding_model: str | None = None
    embedding_api_key: str | None = None
    embedding_timeout_s: float = Field(10.0, gt=0, le=300)
    embedding_batch_size: int = Field(32, ge=1, le=1024)
    embedding_threads: int = Field(2, ge=1, le=64)

    # ---- limits and lifetimes
    #: 0 keeps documents forever (the original runtime required >= 1).
    knowledge_retention_days: int = Field(365, ge=0)
    short_term_ttl_s: float = Field(3600.0, gt=0)
    max_ttl_s: float = Field(30 * 86_400.0, gt=0)
    max_content_chars: int = Field(16_000, ge=1, le=1_000_000)
    max_batch: int = Field(256, ge=1, le=1024)
    max_document_bytes: ByteSize = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_documents_per_stream: int = Field(1000, ge=1)
    chunk_chars: int = Field(800, ge=100, le=20_000)
    chunk_overlap_chars: int = Field(120, ge=0)

    # ---- retrieval and answers
    vector_weight: float = Field(0.7, ge=0)
    keyword_weight: float = Field(0.3, ge=0)
    rag_passages: int = Field(5, ge=1, le=50)
    answer_sentences: int = Field(3, ge=1, le=20)
    #: An OpenAI-compatible chat endpoint that writes answers (extractive when unset).
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(20.0, gt=0, le=600)

    # ---- policy and the bus
    policy_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Who must be allowed ``write_context`` to write: ``bus`` — requests that come over the
    #: bus (agents, nodes vouching for them); ``all`` — gRPC callers too.
    write_checks: Literal["bus", "all"] = "bus"
    #: Concurrent responders on ``symbi.rpc.context.*`` (each answers one request at a time).
    bus_responders: int = Field(4, ge=1, le=64)
    audit_timeout_s: float = Field(5.0, gt=0, le=60)

    # ---- housekeeping
    maintain_interval_s: float = Field(30.0, gt=0)
    sweep_interval_s: float = Field(60.0, gt=0)
    purge_interval_s: float = Field(3600.0, gt=0)

    def server_url(self) -> str | None:
        """``vector_db_url``, else ``$QDRANT_URL``."""
        return self.vector_db_url or os.environ.get("QDRANT_URL") or None

    def problems(self) -> list[str]:
        """What is wrong with this section as a whole (each: key = value: what is allowed)."""
        out: list[str] = []
        if self.embedding_kind == "minilm" and self.embedding_dimension != MINILM_DIMENSION:
            out.append(
                f"context.embedding_dimension = {self.embedding_dimension}: the default "
                f'embedder (embedding_kind = "minilm", all-MiniLM-L6-v2) makes '
                f"{MINILM_DIMENSION}-dimensional vectors; set embedding_dimension = "
                f'{MINILM_DIMENSION}, or use embedding_kind = "openai" with a model that '
                f"makes {self.embedding_dimension}-dimensional vectors"
            )
        if self.embedding_kind == "openai" and not (self.embedding_url and self.embedding_model):
            out.append(
                f'context.embedding_kind = "openai": embedding_url and embedding_model are '
                f"required (got url={self.embedding_url!r}, model={self.embedding_model!r})"
            )
        if self.backend == "server" and not self.server_url():
            out.append(
                'context.backend = "server": set vector_db_url (or QDRANT_URL) to the Qdrant '
                "server, e.g. http://127.0.0.1:6333"
            )
        url = self.server_url()
        if self.backend == "server" and url and not url.startswith(("http://", "https://")):
            out.append(f"context.vector_db_url = {url!r}: must start with http:// or https://")
        if bool(self.llm_url) != bool(self.llm_model):
            out.append(
                f"context.llm_url / llm_model: set both or neither (got url={self.llm_url!r}, "
                f"model={self.llm_model!r})"
            )
        if self.chunk_overlap_chars >= self.chunk_chars // 2:
            out.append(
                f"context.chunk_overlap_chars = {self.chunk_overlap_chars}: must be below "
                f"chunk_chars / 2 ({self.chunk_chars // 2})"
            )
        if self.vector_weight + self.keyword_weight <= 0:
            out.append("context.vector_weight + keyword_weight: must be positive")
        if self.max_ttl_s < self.short_term_ttl_s:
            out.append(
                f"context.max_ttl_s = {self.max_ttl_s}: must be >= short_term_ttl_s "
                f"({self.short_term_ttl_s})"
            )
        return out


class ContextSettings(ServiceSettings):
    service_name: ClassVar[str] = "context"

    grpc: GrpcSection = GrpcSection(port=50055)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9468)
    context: ContextServiceSection = ContextServiceSection()

    @property
    def store_path(self) -> Path:
        """Where the embedded vector store lives."""
        return self.context.store_path or self.data_dir / "context"
