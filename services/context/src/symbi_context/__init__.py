"""symbi_context: the context service's domain core — agent memory, knowledge base and RAG.

Nothing here imports grpc or nats. The service process (wiring phase) builds:

    store = EdgeVectorStore(path)            # or QdrantServerVectorStore(ServerStoreOptions(url))
    embedder = build_embedder(EmbedderOptions())
    memory = MemoryStore(store, embedder, policy_port, MemoryOptions(), events=sink)
    knowledge = KnowledgeBase(store, embedder, policy_port, KnowledgeOptions(...))
    rag = RagPipeline(memory, knowledge, RagOptions(...))
    await memory.open(); await knowledge.open()

and runs ``store.maintain()``, ``memory.sweep()`` and ``knowledge.purge_expired()``
periodically from its task group.
"""

from .access import ClearancePolicy
from .answering import NO_ANSWER, Answerer, ExtractiveAnswerer, LlmAnswerer, Passage
from .chunking import Chunk, Chunker, DocumentFormat
from .edge_store import EdgeStoreOptions, EdgeVectorStore
from .embedding import Embedder, EmbedderKind, EmbedderOptions, build_embedder
from .filters import Filter, HasId, Match, MatchAny, Range, all_of, parse_filter
from .hashing import HashingEmbedder
from .keywords import KeywordEncoder
from .knowledge import (
    DocumentInfo,
    IngestResult,
    KnowledgeBase,
    KnowledgeHit,
    KnowledgeQuery,
    NewDocument,
)
from .layout import KNOWLEDGE, MEMORIES, knowledge_collection, memory_collection
from .memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryStore, NewMemory, RetrievedMemory
from .minilm import OnnxMiniLmEmbedder
from .openai_embedder import OpenAICompatibleEmbedder
from .openai_http import OpenAIEndpoint
from .options import (
    HybridWeights,
    ImportanceWeights,
    KnowledgeOptions,
    MemoryOptions,
    RagOptions,
    RankingWeights,
)
from .ports import (
    AccessDecision,
    AccessLevel,
    AccessRequest,
    Clock,
    MemoryEvent,
    MemoryEventSink,
    NullEventSink,
    PolicyPort,
    SystemClock,
)
from .query_analysis import QueryAnalysis, QueryAnalyzer, Scope
from .rag import Answer, RagPipeline, Source
from .server_store import QdrantServerVectorStore, ServerStoreOptions
from .vector_store import (
    CollectionSpec,
    FieldKind,
    ScoredPoint,
    SparseVector,
    StoredPoint,
    VectorPoint,
    VectorStore,
)

__all__ = [
    "KNOWLEDGE",
    "MEMORIES",
    "NO_ANSWER",
    "AccessDecision",
    "AccessLevel",
    "AccessRequest",
    "Answer",
    "Answerer",
    "Chunk",
    "Chunker",
    "ClearancePolicy",
    "Clock",
    "CollectionSpec",
    "DocumentFormat",
    "DocumentInfo",
    "EdgeStoreOptions",
    "EdgeVectorStore",
    "Embedder",
    "EmbedderKind",
    "EmbedderOptions",
    "ExtractiveAnswerer",
    "FieldKind",
    "Filter",
    "HasId",
    "HashingEmbedder",
    "HybridWeights",
    "ImportanceWeights",
    "IngestResult",
    "KeywordEncoder",
    "KnowledgeBase",
    "KnowledgeHit",
    "KnowledgeOptions",
    "KnowledgeQuery",
    "LlmAnswerer",
    "Match",
    "MatchAny",
    "MemoryEvent",
    "MemoryEventSink",
    "MemoryKind",
    "MemoryOptions",
    "MemoryQuery",
    "MemoryRecord",
    "MemoryStore",
    "NewDocument",
    "NewMemory",
    "NullEventSink",
    "OnnxMiniLmEmbedder",
    "OpenAICompatibleEmbedder",
    "OpenAIEndpoint",
    "Passage",
    "PolicyPort",
    "QdrantServerVectorStore",
    "QueryAnalysis",
    "QueryAnalyzer",
    "RagOptions",
    "RagPipeline",
    "Range",
    "RankingWeights",
    "RetrievedMemory",
    "Scope",
    "ScoredPoint",
    "ServerStoreOptions",
    "Source",
    "SparseVector",
    "StoredPoint",
    "SystemClock",
    "VectorPoint",
    "VectorStore",
    "all_of",
    "build_embedder",
    "knowledge_collection",
    "memory_collection",
    "parse_filter",
]
