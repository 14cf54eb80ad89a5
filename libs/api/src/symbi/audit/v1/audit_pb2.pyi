from symbi.bus.v1 import events_pb2 as _events_pb2
from symbi.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublisherStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLISHER_STATUS_UNSPECIFIED: _ClassVar[PublisherStatus]
    PUBLISHER_STATUS_VERIFIED: _ClassVar[PublisherStatus]
    PUBLISHER_STATUS_UNSIGNED: _ClassVar[PublisherStatus]
    PUBLISHER_STATUS_UNKNOWN_KEY: _ClassVar[PublisherStatus]
    PUBLISHER_STATUS_BAD_SIGNATURE: _ClassVar[PublisherStatus]
PUBLISHER_STATUS_UNSPECIFIED: PublisherStatus
PUBLISHER_STATUS_VERIFIED: PublisherStatus
PUBLISHER_STATUS_UNSIGNED: PublisherStatus
PUBLISHER_STATUS_UNKNOWN_KEY: PublisherStatus
PUBLISHER_STATUS_BAD_SIGNATURE: PublisherStatus

class LogEntry(_message.Message):
    __slots__ = ("index", "event", "leaf_hash", "chain_hash", "publisher_signature", "publisher_key_id", "appended_at_ms", "publisher_status", "publisher", "sender", "canonical_event")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    CHAIN_HASH_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    APPENDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_STATUS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_EVENT_FIELD_NUMBER: _ClassVar[int]
    index: int
    event: _events_pb2.AuditEvent
    leaf_hash: bytes
    chain_hash: bytes
    publisher_signature: bytes
    publisher_key_id: str
    appended_at_ms: int
    publisher_status: PublisherStatus
    publisher: str
    sender: str
    canonical_event: bytes
    def __init__(self, index: _Optional[int] = ..., event: _Optional[_Union[_events_pb2.AuditEvent, _Mapping]] = ..., leaf_hash: _Optional[bytes] = ..., chain_hash: _Optional[bytes] = ..., publisher_signature: _Optional[bytes] = ..., publisher_key_id: _Optional[str] = ..., appended_at_ms: _Optional[int] = ..., publisher_status: _Optional[_Union[PublisherStatus, str]] = ..., publisher: _Optional[str] = ..., sender: _Optional[str] = ..., canonical_event: _Optional[bytes] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("agent_id", "actor", "event_type", "since_ms", "until_ms", "text", "page", "event_types", "compliance_tag", "descending", "publisher_status", "follow", "last")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_TAG_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_STATUS_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    actor: str
    event_type: str
    since_ms: int
    until_ms: int
    text: str
    page: _common_pb2.PageRequest
    event_types: _containers.RepeatedScalarFieldContainer[str]
    compliance_tag: str
    descending: bool
    publisher_status: PublisherStatus
    follow: bool
    last: int
    def __init__(self, agent_id: _Optional[str] = ..., actor: _Optional[str] = ..., event_type: _Optional[str] = ..., since_ms: _Optional[int] = ..., until_ms: _Optional[int] = ..., text: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ..., event_types: _Optional[_Iterable[str]] = ..., compliance_tag: _Optional[str] = ..., descending: _Optional[bool] = ..., publisher_status: _Optional[_Union[PublisherStatus, str]] = ..., follow: _Optional[bool] = ..., last: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("entries", "page")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    page: _common_pb2.PageResponse
    def __init__(self, entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., page: _Optional[_Union[_common_pb2.PageResponse, _Mapping]] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("event_id", "index")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    index: int
    def __init__(self, event_id: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("tree_size", "fresh")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    FRESH_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    fresh: bool
    def __init__(self, tree_size: _Optional[int] = ..., fresh: _Optional[bool] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("origin", "tree_size", "root_hash", "signed_note", "log_key")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNED_NOTE_FIELD_NUMBER: _ClassVar[int]
    LOG_KEY_FIELD_NUMBER: _ClassVar[int]
    origin: str
    tree_size: int
    root_hash: bytes
    signed_note: str
    log_key: str
    def __init__(self, origin: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., signed_note: _Optional[str] = ..., log_key: _Optional[str] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("event_id", "index", "tree_size")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    index: int
    tree_size: int
    def __init__(self, event_id: _Optional[str] = ..., index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("index", "tree_size", "leaf_hash", "hashes", "root_hash", "checkpoint_note")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    root_hash: bytes
    checkpoint_note: str
    def __init__(self, index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., hashes: _Optional[_Iterable[bytes]] = ..., root_hash: _Optional[bytes] = ..., checkpoint_note: _Optional[str] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("old_size", "new_size", "hashes", "old_root", "new_root", "old_checkpoint_note", "new_checkpoint_note")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    OLD_ROOT_FIELD_NUMBER: _ClassVar[int]
    NEW_ROOT_FIELD_NUMBER: _ClassVar[int]
    OLD_CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    NEW_CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    old_root: bytes
    new_root: bytes
    old_checkpoint_note: str
    new_checkpoint_note: str
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ..., old_root: _Optional[bytes] = ..., new_root: _Optional[bytes] = ..., old_checkpoint_note: _Optional[str] = ..., new_checkpoint_note: _Optional[str] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("from_index", "to_index")
    FROM_INDEX_FIELD_NUMBER: _ClassVar[int]
    TO_INDEX_FIELD_NUMBER: _ClassVar[int]
    from_index: int
    to_index: int
    def __init__(self, from_index: _Optional[int] = ..., to_index: _Optional[int] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("ok", "checked", "first_bad_entry", "problem", "from_index", "to_index", "checkpoints_checked")
    OK_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_ENTRY_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    FROM_INDEX_FIELD_NUMBER: _ClassVar[int]
    TO_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    checked: int
    first_bad_entry: str
    problem: str
    from_index: int
    to_index: int
    checkpoints_checked: int
    def __init__(self, ok: _Optional[bool] = ..., checked: _Optional[int] = ..., first_bad_entry: _Optional[str] = ..., problem: _Optional[str] = ..., from_index: _Optional[int] = ..., to_index: _Optional[int] = ..., checkpoints_checked: _Optional[int] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("since_ms", "until_ms", "start_index")
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    since_ms: int
    until_ms: int
    start_index: int
    def __init__(self, since_ms: _Optional[int] = ..., until_ms: _Optional[int] = ..., start_index: _Optional[int] = ...) -> None: ...

class ExportInfo(_message.Message):
    __slots__ = ("origin", "start", "end", "checkpoints", "log_key")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    LOG_KEY_FIELD_NUMBER: _ClassVar[int]
    origin: str
    start: int
    end: int
    checkpoints: int
    log_key: str
    def __init__(self, origin: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., checkpoints: _Optional[int] = ..., log_key: _Optional[str] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data", "info")
    DATA_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    info: ExportInfo
    def __init__(self, data: _Optional[bytes] = ..., info: _Optional[_Union[ExportInfo, _Mapping]] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("since_ms", "until_ms", "format")
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    since_ms: int
    until_ms: int
    format: str
    def __init__(self, since_ms: _Optional[int] = ..., until_ms: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ("content_type", "body")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    body: bytes
    def __init__(self, content_type: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IngestStats(_message.Message):
    __slots__ = ("events", "duplicates", "unverified", "malformed", "batches", "consumer")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    UNVERIFIED_FIELD_NUMBER: _ClassVar[int]
    MALFORMED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    events: int
    duplicates: int
    unverified: int
    malformed: int
    batches: int
    consumer: str
    def __init__(self, events: _Optional[int] = ..., duplicates: _Optional[int] = ..., unverified: _Optional[int] = ..., malformed: _Optional[int] = ..., batches: _Optional[int] = ..., consumer: _Optional[str] = ...) -> None: ...

class LogStatus(_message.Message):
    __slots__ = ("origin", "size", "root_hash", "archived_before", "latest_checkpoint", "log_key", "ingest")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LATEST_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LOG_KEY_FIELD_NUMBER: _ClassVar[int]
    INGEST_FIELD_NUMBER: _ClassVar[int]
    origin: str
    size: int
    root_hash: bytes
    archived_before: int
    latest_checkpoint: Checkpoint
    log_key: str
    ingest: IngestStats
    def __init__(self, origin: _Optional[str] = ..., size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., archived_before: _Optional[int] = ..., latest_checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., log_key: _Optional[str] = ..., ingest: _Optional[_Union[IngestStats, _Mapping]] = ...) -> None: ...

class ArchiveRequest(_message.Message):
    __slots__ = ("fresh_checkpoint",)
    FRESH_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    fresh_checkpoint: bool
    def __init__(self, fresh_checkpoint: _Optional[bool] = ...) -> None: ...

class ArchiveResponse(_message.Message):
    __slots__ = ("archived", "path", "start", "end", "removed")
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    archived: bool
    path: str
    start: int
    end: int
    removed: int
    def __init__(self, archived: _Optional[bool] = ..., path: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., removed: _Optional[int] = ...) -> None: ...
