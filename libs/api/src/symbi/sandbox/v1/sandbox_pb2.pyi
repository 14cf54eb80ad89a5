from symbi.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATE_UNSPECIFIED: _ClassVar[ExecutionState]
    EXECUTION_STATE_STARTING: _ClassVar[ExecutionState]
    EXECUTION_STATE_RUNNING: _ClassVar[ExecutionState]
    EXECUTION_STATE_EXITED: _ClassVar[ExecutionState]
    EXECUTION_STATE_OOM_KILLED: _ClassVar[ExecutionState]
    EXECUTION_STATE_TIMED_OUT: _ClassVar[ExecutionState]
    EXECUTION_STATE_KILLED: _ClassVar[ExecutionState]
    EXECUTION_STATE_REFUSED: _ClassVar[ExecutionState]
    EXECUTION_STATE_LOST: _ClassVar[ExecutionState]
EXECUTION_STATE_UNSPECIFIED: ExecutionState
EXECUTION_STATE_STARTING: ExecutionState
EXECUTION_STATE_RUNNING: ExecutionState
EXECUTION_STATE_EXITED: ExecutionState
EXECUTION_STATE_OOM_KILLED: ExecutionState
EXECUTION_STATE_TIMED_OUT: ExecutionState
EXECUTION_STATE_KILLED: ExecutionState
EXECUTION_STATE_REFUSED: ExecutionState
EXECUTION_STATE_LOST: ExecutionState

class RunRequest(_message.Message):
    __slots__ = ("task_id", "agent_id", "image", "command", "env", "tier", "limits", "code", "network", "without_channel", "attempt")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    tier: _common_pb2.SandboxTier
    limits: _common_pb2.ResourceLimits
    code: bytes
    network: bool
    without_channel: bool
    attempt: int
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., tier: _Optional[_Union[_common_pb2.SandboxTier, str]] = ..., limits: _Optional[_Union[_common_pb2.ResourceLimits, _Mapping]] = ..., code: _Optional[bytes] = ..., network: _Optional[bool] = ..., without_channel: _Optional[bool] = ..., attempt: _Optional[int] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("stream", "data", "timestamp_ms")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    data: bytes
    timestamp_ms: int
    def __init__(self, stream: _Optional[str] = ..., data: _Optional[bytes] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("task_id", "agent_id", "state", "exit_code", "reason", "tier", "container_id", "started_at_ms", "finished_at_ms", "dispatch_id", "tier_reason", "node_id", "log_bytes", "attempt")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_REASON_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    state: ExecutionState
    exit_code: int
    reason: str
    tier: _common_pb2.SandboxTier
    container_id: str
    started_at_ms: int
    finished_at_ms: int
    dispatch_id: str
    tier_reason: str
    node_id: str
    log_bytes: int
    attempt: int
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[ExecutionState, str]] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.SandboxTier, str]] = ..., container_id: _Optional[str] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., dispatch_id: _Optional[str] = ..., tier_reason: _Optional[str] = ..., node_id: _Optional[str] = ..., log_bytes: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("started", "log", "finished")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    started: Execution
    log: LogChunk
    finished: Execution
    def __init__(self, started: _Optional[_Union[Execution, _Mapping]] = ..., log: _Optional[_Union[LogChunk, _Mapping]] = ..., finished: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class KillRequest(_message.Message):
    __slots__ = ("task_id", "grace_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    grace_ms: int
    def __init__(self, task_id: _Optional[str] = ..., grace_ms: _Optional[int] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("task_id", "follow")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    follow: bool
    def __init__(self, task_id: _Optional[str] = ..., follow: _Optional[bool] = ...) -> None: ...

class NodeInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeInfoResponse(_message.Message):
    __slots__ = ("node_id", "memory_total_mb", "memory_free_mb", "cpu_total_millicores", "tiers", "running_tasks", "labels", "docker_version", "cpu_free_millicores", "channel_tiers", "running_task_ids", "instance_id", "broken_tiers", "max_concurrent_tasks")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class BrokenTiersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_MB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_MB_FIELD_NUMBER: _ClassVar[int]
    CPU_TOTAL_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOCKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CPU_FREE_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_TIERS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    BROKEN_TIERS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_TASKS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    memory_total_mb: int
    memory_free_mb: int
    cpu_total_millicores: int
    tiers: _containers.RepeatedScalarFieldContainer[_common_pb2.SandboxTier]
    running_tasks: int
    labels: _containers.ScalarMap[str, str]
    docker_version: str
    cpu_free_millicores: int
    channel_tiers: _containers.RepeatedScalarFieldContainer[_common_pb2.SandboxTier]
    running_task_ids: _containers.RepeatedScalarFieldContainer[str]
    instance_id: str
    broken_tiers: _containers.ScalarMap[str, str]
    max_concurrent_tasks: int
    def __init__(self, node_id: _Optional[str] = ..., memory_total_mb: _Optional[int] = ..., memory_free_mb: _Optional[int] = ..., cpu_total_millicores: _Optional[int] = ..., tiers: _Optional[_Iterable[_Union[_common_pb2.SandboxTier, str]]] = ..., running_tasks: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., docker_version: _Optional[str] = ..., cpu_free_millicores: _Optional[int] = ..., channel_tiers: _Optional[_Iterable[_Union[_common_pb2.SandboxTier, str]]] = ..., running_task_ids: _Optional[_Iterable[str]] = ..., instance_id: _Optional[str] = ..., broken_tiers: _Optional[_Mapping[str, str]] = ..., max_concurrent_tasks: _Optional[int] = ...) -> None: ...
