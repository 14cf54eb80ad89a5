from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MemoryType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMORY_TYPE_UNSPECIFIED: _ClassVar[MemoryType]
    MEMORY_TYPE_SHORT_TERM: _ClassVar[MemoryType]
    MEMORY_TYPE_LONG_TERM: _ClassVar[MemoryType]
    MEMORY_TYPE_WORKING: _ClassVar[MemoryType]
    MEMORY_TYPE_SHARED: _ClassVar[MemoryType]

class AccessLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_LEVEL_UNSPECIFIED: _ClassVar[AccessLevel]
    ACCESS_LEVEL_PUBLIC: _ClassVar[AccessLevel]
    ACCESS_LEVEL_RESTRICTED: _ClassVar[AccessLevel]
    ACCESS_LEVEL_CONFIDENTIAL: _ClassVar[AccessLevel]
    ACCESS_LEVEL_SECRET: _ClassVar[AccessLevel]
MEMORY_TYPE_UNSPECIFIED: MemoryType
MEMORY_TYPE_SHORT_TERM: MemoryType
MEMORY_TYPE_LONG_TERM: MemoryType
MEMORY_TYPE_WORKING: MemoryType
MEMORY_TYPE_SHARED: MemoryType
ACCESS_LEVEL_UNSPECIFIED: AccessLevel
ACCESS_LEVEL_PUBLIC: AccessLevel
ACCESS_LEVEL_RESTRICTED: AccessLevel
ACCESS_LEVEL_CONFIDENTIAL: AccessLevel
ACCESS_LEVEL_SECRET: AccessLevel

class MemoryItem(_message.Message):
    __slots__ = ("id", "agent_id", "type", "content", "tags", "importance", "access", "task_id", "created_at_ms", "expires_at_ms", "metadata", "ttl_s", "feedback", "access_count", "last_accessed_at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    ACCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCESSED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent_id: str
    type: MemoryType
    content: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    importance: float
    access: AccessLevel
    task_id: str
    created_at_ms: int
    expires_at_ms: int
    metadata: _struct_pb2.Struct
    ttl_s: float
    feedback: float
    access_count: int
    last_accessed_at_ms: int
    def __init__(self, id: _Optional[str] = ..., agent_id: _Optional[str] = ..., type: _Optional[_Union[MemoryType, str]] = ..., content: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., importance: _Optional[float] = ..., access: _Optional[_Union[AccessLevel, str]] = ..., task_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., ttl_s: _Optional[float] = ..., feedback: _Optional[float] = ..., access_count: _Optional[int] = ..., last_accessed_at_ms: _Optional[int] = ...) -> None: ...

class StoreContextRequest(_message.Message):
    __slots__ = ("item", "ttl_s", "items", "agent_id")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    item: MemoryItem
    ttl_s: int
    items: _containers.RepeatedCompositeFieldContainer[MemoryItem]
    agent_id: str
    def __init__(self, item: _Optional[_Union[MemoryItem, _Mapping]] = ..., ttl_s: _Optional[int] = ..., items: _Optional[_Iterable[_Union[MemoryItem, _Mapping]]] = ..., agent_id: _Optional[str] = ...) -> None: ...

class StoreContextResponse(_message.Message):
    __slots__ = ("id", "ids", "items")
    ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    items: _containers.RepeatedCompositeFieldContainer[MemoryItem]
    def __init__(self, id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., items: _Optional[_Iterable[_Union[MemoryItem, _Mapping]]] = ...) -> None: ...

class RetrieveContextRequest(_message.Message):
    __slots__ = ("agent_id", "query", "types", "tags", "limit", "since_ms", "include_shared", "until_ms", "task_id", "filter", "query_vector")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SHARED_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    QUERY_VECTOR_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    query: str
    types: _containers.RepeatedScalarFieldContainer[MemoryType]
    tags: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    since_ms: int
    include_shared: bool
    until_ms: int
    task_id: str
    filter: str
    query_vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, agent_id: _Optional[str] = ..., query: _Optional[str] = ..., types: _Optional[_Iterable[_Union[MemoryType, str]]] = ..., tags: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., since_ms: _Optional[int] = ..., include_shared: _Optional[bool] = ..., until_ms: _Optional[int] = ..., task_id: _Optional[str] = ..., filter: _Optional[str] = ..., query_vector: _Optional[_Iterable[float]] = ...) -> None: ...

class ScoredMemory(_message.Message):
    __slots__ = ("item", "score", "relevance", "vector_score", "keyword_score", "importance", "owned")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RELEVANCE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_SCORE_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    OWNED_FIELD_NUMBER: _ClassVar[int]
    item: MemoryItem
    score: float
    relevance: float
    vector_score: float
    keyword_score: float
    importance: float
    owned: bool
    def __init__(self, item: _Optional[_Union[MemoryItem, _Mapping]] = ..., score: _Optional[float] = ..., relevance: _Optional[float] = ..., vector_score: _Optional[float] = ..., keyword_score: _Optional[float] = ..., importance: _Optional[float] = ..., owned: _Optional[bool] = ...) -> None: ...

class RetrieveContextResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoredMemory]
    def __init__(self, items: _Optional[_Iterable[_Union[ScoredMemory, _Mapping]]] = ...) -> None: ...

class GetMemoryRequest(_message.Message):
    __slots__ = ("agent_id", "memory_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    memory_id: str
    def __init__(self, agent_id: _Optional[str] = ..., memory_id: _Optional[str] = ...) -> None: ...

class SearchKnowledgeRequest(_message.Message):
    __slots__ = ("agent_id", "query", "limit", "vector_weight", "keyword_weight", "tags", "document_ids", "filter", "own_only", "query_vector")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OWN_ONLY_FIELD_NUMBER: _ClassVar[int]
    QUERY_VECTOR_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    query: str
    limit: int
    vector_weight: float
    keyword_weight: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    filter: str
    own_only: bool
    query_vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, agent_id: _Optional[str] = ..., query: _Optional[str] = ..., limit: _Optional[int] = ..., vector_weight: _Optional[float] = ..., keyword_weight: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., document_ids: _Optional[_Iterable[str]] = ..., filter: _Optional[str] = ..., own_only: _Optional[bool] = ..., query_vector: _Optional[_Iterable[float]] = ...) -> None: ...

class Passage(_message.Message):
    __slots__ = ("document_id", "chunk_id", "text", "score", "source", "title", "section", "owner", "relevance", "vector_score", "keyword_score", "number", "kind", "chunk_index")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    RELEVANCE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_SCORE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    chunk_id: str
    text: str
    score: float
    source: str
    title: str
    section: str
    owner: str
    relevance: float
    vector_score: float
    keyword_score: float
    number: int
    kind: str
    chunk_index: int
    def __init__(self, document_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[str] = ..., title: _Optional[str] = ..., section: _Optional[str] = ..., owner: _Optional[str] = ..., relevance: _Optional[float] = ..., vector_score: _Optional[float] = ..., keyword_score: _Optional[float] = ..., number: _Optional[int] = ..., kind: _Optional[str] = ..., chunk_index: _Optional[int] = ...) -> None: ...

class SearchKnowledgeResponse(_message.Message):
    __slots__ = ("passages",)
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    passages: _containers.RepeatedCompositeFieldContainer[Passage]
    def __init__(self, passages: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("agent_id", "document_id", "source", "content_type", "chunk", "access", "title", "tags", "importance", "end_of_document")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    END_OF_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    document_id: str
    source: str
    content_type: str
    chunk: bytes
    access: AccessLevel
    title: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    importance: float
    end_of_document: bool
    def __init__(self, agent_id: _Optional[str] = ..., document_id: _Optional[str] = ..., source: _Optional[str] = ..., content_type: _Optional[str] = ..., chunk: _Optional[bytes] = ..., access: _Optional[_Union[AccessLevel, str]] = ..., title: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., importance: _Optional[float] = ..., end_of_document: _Optional[bool] = ...) -> None: ...

class IngestedDocument(_message.Message):
    __slots__ = ("document_id", "chunks", "embedded", "reused", "removed", "deduplicated", "content_hash")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDED_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    chunks: int
    embedded: int
    reused: int
    removed: int
    deduplicated: bool
    content_hash: str
    def __init__(self, document_id: _Optional[str] = ..., chunks: _Optional[int] = ..., embedded: _Optional[int] = ..., reused: _Optional[int] = ..., removed: _Optional[int] = ..., deduplicated: _Optional[bool] = ..., content_hash: _Optional[str] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("document_ids", "chunks", "duplicates", "documents")
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    chunks: int
    duplicates: int
    documents: _containers.RepeatedCompositeFieldContainer[IngestedDocument]
    def __init__(self, document_ids: _Optional[_Iterable[str]] = ..., chunks: _Optional[int] = ..., duplicates: _Optional[int] = ..., documents: _Optional[_Iterable[_Union[IngestedDocument, _Mapping]]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("agent_id", "document_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    document_id: str
    def __init__(self, agent_id: _Optional[str] = ..., document_id: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "owner", "title", "source", "content_type", "content_hash", "tags", "access", "ingested_at_ms", "chunks")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    INGESTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    owner: str
    title: str
    source: str
    content_type: str
    content_hash: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    access: AccessLevel
    ingested_at_ms: int
    chunks: int
    def __init__(self, document_id: _Optional[str] = ..., owner: _Optional[str] = ..., title: _Optional[str] = ..., source: _Optional[str] = ..., content_type: _Optional[str] = ..., content_hash: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., access: _Optional[_Union[AccessLevel, str]] = ..., ingested_at_ms: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("agent_id", "question", "limit", "scope")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    question: str
    limit: int
    scope: str
    def __init__(self, agent_id: _Optional[str] = ..., question: _Optional[str] = ..., limit: _Optional[int] = ..., scope: _Optional[str] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("answer", "sources", "mode", "timings_ms")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    answer: str
    sources: _containers.RepeatedCompositeFieldContainer[Passage]
    mode: str
    timings_ms: _containers.ScalarMap[str, float]
    def __init__(self, answer: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ..., mode: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("agent_id", "ids", "task_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    task_id: str
    def __init__(self, agent_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., task_id: _Optional[str] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("deleted", "memories", "documents", "working")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    WORKING_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    memories: int
    documents: int
    working: int
    def __init__(self, deleted: _Optional[int] = ..., memories: _Optional[int] = ..., documents: _Optional[int] = ..., working: _Optional[int] = ...) -> None: ...

class ShareMemoryRequest(_message.Message):
    __slots__ = ("agent_id", "memory_id", "access")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    memory_id: str
    access: AccessLevel
    def __init__(self, agent_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., access: _Optional[_Union[AccessLevel, str]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("agent_id", "memory_id", "score")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    memory_id: str
    score: float
    def __init__(self, agent_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...
