"""The context service process: wiring of the domain to gRPC, the bus, policy and audit.

``build(settings)`` checks the configuration (exit 2 on a bad one) and returns the
:class:`ContextService` the runner drives. ``start`` opens the vector store (embedded under
``<data_dir>/context`` by default, locked against a second process), loads the embedder on a
worker thread, builds memory, knowledge and RAG with the policy service as their policy port
and audit events as their event sink, spawns the bus responders and the housekeeping loops,
and returns when requests can be served.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from symbi.context.v1 import context_pb2, context_pb2_grpc
from symbi_common.errors import ConfigError, FailedPrecondition, Unavailable
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import BucketSpec, StreamSpec
from symbi_common.policy_client import PolicyClient
from symbi_common.runner import Runtime
from symbi_common.service import binding
from symbi_context.authz import CONTEXT_RULES

from .answering import Answerer, LlmAnswerer
from .api import ContextApi, IngestLimits
from .audit import AuditEventSink
from .edge_store import EdgeStoreOptions, EdgeVectorStore
from .embedding import Embedder, EmbedderKind, EmbedderOptions, build_embedder
from .events import QUEUE_GROUP, BusResponder, instance_subject, shared_subject
from .housekeeping import Job, run_periodically
from .knowledge import KnowledgeBase
from .memory import MemoryStore
from .openai_http import OpenAIEndpoint
from .options import HybridWeights, KnowledgeOptions, MemoryOptions, RagOptions
from .policy_gate import PolicyServicePort
from .rag import RagPipeline
from .server_store import QdrantServerVectorStore, ServerStoreOptions
from .servicer import ContextServicer
from .settings import ContextSettings
from .vector_store import VectorStore

__all__ = ["ContextService", "build"]

log = logging.getLogger(__name__)

VECTOR_STORE = "vector-store"


class _DirectoryLock:
    """An exclusive ``flock`` on ``<dir>/LOCK``: one process per embedded store (the kernel
    releases it when the holder dies, even by ``kill -9``)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "LOCK"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise FailedPrecondition(
                f"the embedded vector store {directory} is in use by another process",
                reason="STORE_LOCKED",
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class ContextService:
    """The :class:`~symbi_common.runner.Service` of the context process."""

    def __init__(self, settings: ContextSettings) -> None:
        c = settings.context
        problems = c.problems()
        if problems:
            raise ConfigError(
                "invalid configuration:\n  " + "\n  ".join(problems), reason="CONFIG_INVALID"
            )
        self.settings = settings
        weights = HybridWeights(vector=c.vector_weight, keyword=c.keyword_weight)
        self._weights = weights
        self._embedder_options = EmbedderOptions(
            kind=EmbedderKind(c.embedding_kind),
            batch_size=c.embedding_batch_size,
            dimension=c.embedding_dimension,
            threads=c.embedding_threads,
            endpoint=(
                OpenAIEndpoint(
                    c.embedding_url,
                    c.embedding_model,
                    c.embedding_api_key,
                    c.embedding_timeout_s,
                )
                if c.embedding_kind == "openai" and c.embedding_url and c.embedding_model
                else None
            ),
        )
        self._memory_options = MemoryOptions(
            short_term_ttl_s=c.short_term_ttl_s,
            max_ttl_s=c.max_ttl_s,
            max_content_chars=c.max_content_chars,
            max_batch=c.max_batch,
            hybrid=weights,
        )
        self._knowledge_options = KnowledgeOptions(
            chunk_chars=c.chunk_chars,
            overlap_chars=c.chunk_overlap_chars,
            max_document_bytes=c.max_document_bytes,
            retention_days=float(c.knowledge_retention_days),
            hybrid=weights,
        )
        self._llm = (
            OpenAIEndpoint(c.llm_url, c.llm_model, c.llm_api_key, c.llm_timeout_s)
            if c.llm_url and c.llm_model
            else None
        )
        self._rag_options = RagOptions(
            passages=c.rag_passages, answer_sentences=c.answer_sentences, llm=self._llm
        )
        if c.backend == "embedded" and c.vector_db_url:
            log.warning(
                "context.vector_db_url is set but context.backend is embedded: the URL is "
                'not used (set backend = "server" to use a Qdrant server)'
            )
        self._servicer = ContextServicer(self.api, check_writes=c.write_checks == "all")
        self._api: ContextApi | None = None
        self._store: VectorStore | None = None
        self._embedder: Embedder | None = None
        self._answerer: LlmAnswerer | None = None
        self._lock: _DirectoryLock | None = None

    # ---------------------------------------------------------------- Service protocol

    def api(self) -> ContextApi:
        if self._api is None:
            raise Unavailable("the context service is starting", reason="STARTING")
        return self._api

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                context_pb2,
                "ContextService",
                context_pb2_grpc.add_ContextServiceServicer_to_server,
                self._servicer,
                rules=CONTEXT_RULES,
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()

    def buckets(self) -> Sequence[BucketSpec]:
        return ()

    async def start(self, runtime: Runtime) -> None:
        c = self.settings.context
        self._store = self._open_store()
        embedder = await asyncio.to_thread(build_embedder, self._embedder_options)
        self._embedder = embedder
        await embedder.embed(["warm-up"])  # the first inference pays for lazy initialisation
        if embedder.dimension != c.embedding_dimension:
            raise ConfigError(
                f"context.embedding_dimension = {c.embedding_dimension}, but the "
                f"{c.embedding_kind} embedder makes {embedder.dimension}-dimensional vectors",
                reason="CONFIG_INVALID",
            )
        policy = PolicyServicePort(PolicyClient(runtime.bus, timeout_s=c.policy_timeout_s))
        sink = AuditEventSink(lambda: runtime.bus.recorder, timeout_s=c.audit_timeout_s)
        memory = MemoryStore(self._store, embedder, policy, self._memory_options, events=sink)
        knowledge = KnowledgeBase(
            self._store, embedder, policy, self._knowledge_options, events=sink
        )
        answerer: Answerer | None = None
        if self._llm is not None:
            self._answerer = LlmAnswerer(self._llm)
            answerer = self._answerer
        rag = RagPipeline(memory, knowledge, self._rag_options, answerer=answerer)
        await memory.open()
        await knowledge.open()
        self._api = ContextApi(
            memory,
            knowledge,
            rag,
            policy,
            sink,
            ingest_limits=IngestLimits(c.max_document_bytes, c.max_documents_per_stream),
            default_weights=self._weights,
        )

        responder = BusResponder(self.api)
        bus = runtime.bus
        for i in range(c.bus_responders):
            runtime.spawn(
                bus.serve(shared_subject(), responder, queue=QUEUE_GROUP),
                name=f"context-responder-{i}",
            )
        principal = self.settings.principal_id
        runtime.spawn(
            bus.serve(instance_subject(principal), responder, queue=principal),
            name="context-responder-instance",
        )

        async def health(ok: bool) -> None:
            await runtime.set_component_health(VECTOR_STORE, ok)

        store = self._store

        async def maintain() -> int:
            await store.maintain()
            return 0

        async def sweep() -> int:
            n = await memory.sweep()
            if n:
                await sink.record("context.swept", {"count": n})
            return n

        async def purge() -> int:
            n = await knowledge.purge_expired()
            if n:
                await sink.record(
                    "context.purged",
                    {"chunks": n, "retention_days": c.knowledge_retention_days},
                )
            return n

        for job in (
            Job("maintain", c.maintain_interval_s, maintain),
            Job("sweep", c.sweep_interval_s, sweep),
            Job("purge", c.purge_interval_s, purge),
        ):
            runtime.spawn(run_periodically(job, health), name=f"context-{job.name}")
        await runtime.set_component_health(VECTOR_STORE, True)
        log.info(
            "context ready: %s store, %s embedder (%d-d), %d bus responders",
            c.backend,
            embedder.model_id,
            embedder.dimension,
            c.bus_responders,
        )

    def _open_store(self) -> VectorStore:
        c = self.settings.context
        if c.backend == "server":
            url = c.server_url()
            assert url is not None  # checked in problems()
            return QdrantServerVectorStore(
                ServerStoreOptions(
                    url=url,
                    api_key=c.vector_db_api_key,
                    timeout_s=c.vector_db_timeout_s,
                    collection_prefix=c.collection_prefix,
                    hnsw_ef=c.hnsw_ef,
                )
            )
        path = self.settings.store_path
        self._lock = _DirectoryLock(path)
        return EdgeVectorStore(
            path / "collections",
            EdgeStoreOptions(hnsw_m=c.hnsw_m, hnsw_ef=c.hnsw_ef, optimize_after=c.optimize_after),
        )

    async def close(self) -> None:
        self._api = None
        try:
            if self._store is not None:
                await self._store.aclose()
            if self._embedder is not None:
                await self._embedder.aclose()
            if self._answerer is not None:
                await self._answerer.aclose()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def build(settings: ContextSettings) -> ContextService:
    return ContextService(settings)
