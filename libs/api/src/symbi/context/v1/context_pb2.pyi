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
    __slots__ = ("id", "agent_id", "type", "content", "tags", "importance", "access", "task_id", "created_at_ms", "expires_at_ms", "metadata")
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
    def __init__(self, id: _Optional[str] = ..., agent_id: _Optional[str] = ..., type: _Optional[_Union[MemoryType, str]] = ..., content: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., importance: _Optional[float] = ..., access: _Optional[_Union[AccessLevel, str]] = ..., task_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StoreContextRequest(_message.Message):
    __slots__ = ("item", "ttl_s")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    item: MemoryItem
    ttl_s: int
    def __init__(self, item: _Optional[_Union[MemoryItem, _Mapping]] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class StoreContextResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RetrieveContextRequest(_message.Message):
    __slots__ = ("agent_id", "query", "types", "tags", "limit", "since_ms", "include_shared")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SHARED_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    query: str
    types: _containers.RepeatedScalarFieldContainer[MemoryType]
    tags: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    since_ms: int
    include_shared: bool
    def __init__(self, agent_id: _Optional[str] = ..., query: _Optional[str] = ..., types: _Optional[_Iterable[_Union[MemoryType, str]]] = ..., tags: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., since_ms: _Optional[int] = ..., include_shared: _Optional[bool] = ...) -> None: ...

class ScoredMemory(_message.Message):
    __slots__ = ("item", "score")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    item: MemoryItem
    score: float
    def __init__(self, item: _Optional[_Union[MemoryItem, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class RetrieveContextResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoredMemory]
    def __init__(self, items: _Optional[_Iterable[_Union[ScoredMemory, _Mapping]]] = ...) -> None: ...

class SearchKnowledgeRequest(_message.Message):
    __slots__ = ("agent_id", "query", "limit", "vector_weight", "keyword_weight")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    query: str
    limit: int
    vector_weight: float
    keyword_weight: float
    def __init__(self, agent_id: _Optional[str] = ..., query: _Optional[str] = ..., limit: _Optional[int] = ..., vector_weight: _Optional[float] = ..., keyword_weight: _Optional[float] = ...) -> None: ...

class Passage(_message.Message):
    __slots__ = ("document_id", "chunk_id", "text", "score", "source")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    chunk_id: str
    text: str
    score: float
    source: str
    def __init__(self, document_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

class SearchKnowledgeResponse(_message.Message):
    __slots__ = ("passages",)
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    passages: _containers.RepeatedCompositeFieldContainer[Passage]
    def __init__(self, passages: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("agent_id", "document_id", "source", "content_type", "chunk", "access")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    document_id: str
    source: str
    content_type: str
    chunk: bytes
    access: AccessLevel
    def __init__(self, agent_id: _Optional[str] = ..., document_id: _Optional[str] = ..., source: _Optional[str] = ..., content_type: _Optional[str] = ..., chunk: _Optional[bytes] = ..., access: _Optional[_Union[AccessLevel, str]] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("document_ids", "chunks", "duplicates")
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    chunks: int
    duplicates: int
    def __init__(self, document_ids: _Optional[_Iterable[str]] = ..., chunks: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("agent_id", "question", "limit")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    question: str
    limit: int
    def __init__(self, agent_id: _Optional[str] = ..., question: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("answer", "sources", "mode")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    answer: str
    sources: _containers.RepeatedCompositeFieldContainer[Passage]
    mode: str
    def __init__(self, answer: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ..., mode: _Optional[str] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("agent_id", "ids")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...
