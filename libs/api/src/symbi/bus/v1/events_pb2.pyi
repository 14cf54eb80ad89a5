from google.protobuf import struct_pb2 as _struct_pb2
from symbi.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditEvent(_message.Message):
    __slots__ = ("event_id", "timestamp_us", "agent_id", "actor", "event_type", "details_json", "trace_id", "compliance_tags", "publisher_key_id", "publisher_signature")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_TAGS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    timestamp_us: int
    agent_id: str
    actor: str
    event_type: str
    details_json: str
    trace_id: str
    compliance_tags: _containers.RepeatedScalarFieldContainer[str]
    publisher_key_id: str
    publisher_signature: bytes
    def __init__(self, event_id: _Optional[str] = ..., timestamp_us: _Optional[int] = ..., agent_id: _Optional[str] = ..., actor: _Optional[str] = ..., event_type: _Optional[str] = ..., details_json: _Optional[str] = ..., trace_id: _Optional[str] = ..., compliance_tags: _Optional[_Iterable[str]] = ..., publisher_key_id: _Optional[str] = ..., publisher_signature: _Optional[bytes] = ...) -> None: ...

class NodeHeartbeat(_message.Message):
    __slots__ = ("node_id", "timestamp_ms", "memory_total_mb", "memory_free_mb", "cpu_total_millicores", "cpu_free_millicores", "running_tasks", "tiers", "labels", "running_task_ids", "heartbeat_interval_ms", "disk_io_tiers", "disk_io_tiers_reported")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_MB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_MB_FIELD_NUMBER: _ClassVar[int]
    CPU_TOTAL_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    CPU_FREE_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    DISK_IO_TIERS_FIELD_NUMBER: _ClassVar[int]
    DISK_IO_TIERS_REPORTED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    timestamp_ms: int
    memory_total_mb: int
    memory_free_mb: int
    cpu_total_millicores: int
    cpu_free_millicores: int
    running_tasks: int
    tiers: _containers.RepeatedScalarFieldContainer[_common_pb2.SandboxTier]
    labels: _containers.ScalarMap[str, str]
    running_task_ids: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_interval_ms: int
    disk_io_tiers: _containers.RepeatedScalarFieldContainer[_common_pb2.SandboxTier]
    disk_io_tiers_reported: bool
    def __init__(self, node_id: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., memory_total_mb: _Optional[int] = ..., memory_free_mb: _Optional[int] = ..., cpu_total_millicores: _Optional[int] = ..., cpu_free_millicores: _Optional[int] = ..., running_tasks: _Optional[int] = ..., tiers: _Optional[_Iterable[_Union[_common_pb2.SandboxTier, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., running_task_ids: _Optional[_Iterable[str]] = ..., heartbeat_interval_ms: _Optional[int] = ..., disk_io_tiers: _Optional[_Iterable[_Union[_common_pb2.SandboxTier, str]]] = ..., disk_io_tiers_reported: _Optional[bool] = ...) -> None: ...

class TaskAssignment(_message.Message):
    __slots__ = ("task_id", "agent_id", "attempt", "priority", "tier", "limits", "image", "command", "env", "code", "network", "dispatched_at_ms", "dispatch_id", "not_after_ms", "preempts", "node_id")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    PREEMPTS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    attempt: int
    priority: _common_pb2.Priority
    tier: _common_pb2.SandboxTier
    limits: _common_pb2.ResourceLimits
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    code: bytes
    network: bool
    dispatched_at_ms: int
    dispatch_id: str
    not_after_ms: int
    preempts: _containers.RepeatedScalarFieldContainer[str]
    node_id: str
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., attempt: _Optional[int] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., tier: _Optional[_Union[_common_pb2.SandboxTier, str]] = ..., limits: _Optional[_Union[_common_pb2.ResourceLimits, _Mapping]] = ..., image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., code: _Optional[bytes] = ..., network: _Optional[bool] = ..., dispatched_at_ms: _Optional[int] = ..., dispatch_id: _Optional[str] = ..., not_after_ms: _Optional[int] = ..., preempts: _Optional[_Iterable[str]] = ..., node_id: _Optional[str] = ...) -> None: ...

class TaskStop(_message.Message):
    __slots__ = ("task_id", "reason", "grace_ms", "dispatch_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    grace_ms: int
    dispatch_id: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ..., grace_ms: _Optional[int] = ..., dispatch_id: _Optional[str] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("task_id", "agent_id", "node_id", "attempt", "state", "exit_code", "reason", "timestamp_ms", "dispatch_id")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TaskStatus.State]
        STATE_STARTED: _ClassVar[TaskStatus.State]
        STATE_SUCCEEDED: _ClassVar[TaskStatus.State]
        STATE_FAILED: _ClassVar[TaskStatus.State]
        STATE_OOM_KILLED: _ClassVar[TaskStatus.State]
        STATE_TIMED_OUT: _ClassVar[TaskStatus.State]
        STATE_STOPPED: _ClassVar[TaskStatus.State]
        STATE_REFUSED: _ClassVar[TaskStatus.State]
        STATE_LOST: _ClassVar[TaskStatus.State]
    STATE_UNSPECIFIED: TaskStatus.State
    STATE_STARTED: TaskStatus.State
    STATE_SUCCEEDED: TaskStatus.State
    STATE_FAILED: TaskStatus.State
    STATE_OOM_KILLED: TaskStatus.State
    STATE_TIMED_OUT: TaskStatus.State
    STATE_STOPPED: TaskStatus.State
    STATE_REFUSED: TaskStatus.State
    STATE_LOST: TaskStatus.State
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    node_id: str
    attempt: int
    state: TaskStatus.State
    exit_code: int
    reason: str
    timestamp_ms: int
    dispatch_id: str
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., node_id: _Optional[str] = ..., attempt: _Optional[int] = ..., state: _Optional[_Union[TaskStatus.State, str]] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., dispatch_id: _Optional[str] = ...) -> None: ...

class TaskOutput(_message.Message):
    __slots__ = ("task_id", "agent_id", "node_id", "attempt", "dispatch_id", "seq", "stream", "data", "timestamp_ms", "truncated", "skipped_bytes", "final", "total_bytes")
    class Stream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STREAM_UNSPECIFIED: _ClassVar[TaskOutput.Stream]
        STREAM_STDOUT: _ClassVar[TaskOutput.Stream]
        STREAM_STDERR: _ClassVar[TaskOutput.Stream]
    STREAM_UNSPECIFIED: TaskOutput.Stream
    STREAM_STDOUT: TaskOutput.Stream
    STREAM_STDERR: TaskOutput.Stream
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BYTES_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    node_id: str
    attempt: int
    dispatch_id: str
    seq: int
    stream: TaskOutput.Stream
    data: bytes
    timestamp_ms: int
    truncated: bool
    skipped_bytes: int
    final: bool
    total_bytes: int
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., node_id: _Optional[str] = ..., attempt: _Optional[int] = ..., dispatch_id: _Optional[str] = ..., seq: _Optional[int] = ..., stream: _Optional[_Union[TaskOutput.Stream, str]] = ..., data: _Optional[bytes] = ..., timestamp_ms: _Optional[int] = ..., truncated: _Optional[bool] = ..., skipped_bytes: _Optional[int] = ..., final: _Optional[bool] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class AgentTransition(_message.Message):
    __slots__ = ("agent_id", "from_state", "to_state", "reason", "revision", "timestamp_ms", "actor")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    from_state: str
    to_state: str
    reason: str
    revision: int
    timestamp_ms: int
    actor: str
    def __init__(self, agent_id: _Optional[str] = ..., from_state: _Optional[str] = ..., to_state: _Optional[str] = ..., reason: _Optional[str] = ..., revision: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class CheckpointPublished(_message.Message):
    __slots__ = ("origin", "tree_size", "root_hash", "signed_note")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNED_NOTE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    tree_size: int
    root_hash: bytes
    signed_note: str
    def __init__(self, origin: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., signed_note: _Optional[str] = ...) -> None: ...

class PolicyChanged(_message.Message):
    __slots__ = ("version", "changed_ids", "actor")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    version: int
    changed_ids: _containers.RepeatedScalarFieldContainer[str]
    actor: str
    def __init__(self, version: _Optional[int] = ..., changed_ids: _Optional[_Iterable[str]] = ..., actor: _Optional[str] = ...) -> None: ...
