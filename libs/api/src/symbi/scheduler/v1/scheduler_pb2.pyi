from symbi.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_QUEUED: _ClassVar[TaskState]
    TASK_STATE_DISPATCHED: _ClassVar[TaskState]
    TASK_STATE_RUNNING: _ClassVar[TaskState]
    TASK_STATE_SUCCEEDED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]
    TASK_STATE_PREEMPTED: _ClassVar[TaskState]
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_QUEUED: TaskState
TASK_STATE_DISPATCHED: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELLED: TaskState
TASK_STATE_PREEMPTED: TaskState

class ScheduleAgentRequest(_message.Message):
    __slots__ = ("agent_id", "priority", "limits", "tier", "node_selector", "image", "command", "env", "code", "task_id", "preemptible", "network", "metadata")
    class NodeSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    NODE_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    priority: _common_pb2.Priority
    limits: _common_pb2.ResourceLimits
    tier: _common_pb2.SandboxTier
    node_selector: _containers.ScalarMap[str, str]
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    code: bytes
    task_id: str
    preemptible: bool
    network: bool
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, agent_id: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., limits: _Optional[_Union[_common_pb2.ResourceLimits, _Mapping]] = ..., tier: _Optional[_Union[_common_pb2.SandboxTier, str]] = ..., node_selector: _Optional[_Mapping[str, str]] = ..., image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., code: _Optional[bytes] = ..., task_id: _Optional[str] = ..., preemptible: _Optional[bool] = ..., network: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScheduleAgentResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "agent_id", "state", "priority", "node_id", "attempt", "reason", "submitted_at_ms", "updated_at_ms", "exit_code", "dispatch_id", "preempts", "tier", "limits", "node_selector", "preemptible", "started_at_ms", "preemptions", "node_losses", "has_exit_code")
    class NodeSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PREEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    NODE_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    NODE_LOSSES_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    agent_id: str
    state: TaskState
    priority: _common_pb2.Priority
    node_id: str
    attempt: int
    reason: str
    submitted_at_ms: int
    updated_at_ms: int
    exit_code: int
    dispatch_id: str
    preempts: _containers.RepeatedScalarFieldContainer[str]
    tier: _common_pb2.SandboxTier
    limits: _common_pb2.ResourceLimits
    node_selector: _containers.ScalarMap[str, str]
    preemptible: bool
    started_at_ms: int
    preemptions: int
    node_losses: int
    has_exit_code: bool
    def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., node_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ..., submitted_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., exit_code: _Optional[int] = ..., dispatch_id: _Optional[str] = ..., preempts: _Optional[_Iterable[str]] = ..., tier: _Optional[_Union[_common_pb2.SandboxTier, str]] = ..., limits: _Optional[_Union[_common_pb2.ResourceLimits, _Mapping]] = ..., node_selector: _Optional[_Mapping[str, str]] = ..., preemptible: _Optional[bool] = ..., started_at_ms: _Optional[int] = ..., preemptions: _Optional[int] = ..., node_losses: _Optional[int] = ..., has_exit_code: _Optional[bool] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("state", "limit")
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    state: TaskState
    limit: int
    def __init__(self, state: _Optional[_Union[TaskState, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "total")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    total: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class GetSystemStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SystemStatus(_message.Message):
    __slots__ = ("queue_depth", "nodes_ready", "nodes_unreachable", "running_tasks", "memory_utilisation", "cpu_utilisation", "decisions_per_second", "leader", "leader_id", "instance_id", "queued_total", "dispatched_tasks", "stopping_tasks", "nodes_total", "disk_io_utilisation", "network_io_utilisation", "decisions_total", "preemptions_total", "preemptions_in_window", "failed_total", "journal_position", "term", "decision_p50_ms", "decision_p99_ms", "strategy")
    class QueueDepthEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    NODES_READY_FIELD_NUMBER: _ClassVar[int]
    NODES_UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    CPU_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_TASKS_FIELD_NUMBER: _ClassVar[int]
    STOPPING_TASKS_FIELD_NUMBER: _ClassVar[int]
    NODES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DISK_IO_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    NETWORK_IO_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIONS_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    FAILED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_POSITION_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    DECISION_P50_MS_FIELD_NUMBER: _ClassVar[int]
    DECISION_P99_MS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    queue_depth: _containers.ScalarMap[str, int]
    nodes_ready: int
    nodes_unreachable: int
    running_tasks: int
    memory_utilisation: float
    cpu_utilisation: float
    decisions_per_second: float
    leader: bool
    leader_id: str
    instance_id: str
    queued_total: int
    dispatched_tasks: int
    stopping_tasks: int
    nodes_total: int
    disk_io_utilisation: float
    network_io_utilisation: float
    decisions_total: int
    preemptions_total: int
    preemptions_in_window: int
    failed_total: int
    journal_position: int
    term: int
    decision_p50_ms: float
    decision_p99_ms: float
    strategy: str
    def __init__(self, queue_depth: _Optional[_Mapping[str, int]] = ..., nodes_ready: _Optional[int] = ..., nodes_unreachable: _Optional[int] = ..., running_tasks: _Optional[int] = ..., memory_utilisation: _Optional[float] = ..., cpu_utilisation: _Optional[float] = ..., decisions_per_second: _Optional[float] = ..., leader: _Optional[bool] = ..., leader_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., queued_total: _Optional[int] = ..., dispatched_tasks: _Optional[int] = ..., stopping_tasks: _Optional[int] = ..., nodes_total: _Optional[int] = ..., disk_io_utilisation: _Optional[float] = ..., network_io_utilisation: _Optional[float] = ..., decisions_total: _Optional[int] = ..., preemptions_total: _Optional[int] = ..., preemptions_in_window: _Optional[int] = ..., failed_total: _Optional[int] = ..., journal_position: _Optional[int] = ..., term: _Optional[int] = ..., decision_p50_ms: _Optional[float] = ..., decision_p99_ms: _Optional[float] = ..., strategy: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("node_id", "reachable", "memory_total_mb", "memory_free_mb", "cpu_total_millicores", "cpu_free_millicores", "running_tasks", "tiers", "labels", "last_heartbeat_ms", "accepting", "max_tasks", "disk_io_total_mbps", "disk_io_free_mbps", "network_io_total_mbps", "network_io_free_mbps")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_MB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_MB_FIELD_NUMBER: _ClassVar[int]
    CPU_TOTAL_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    CPU_FREE_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTING_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    DISK_IO_TOTAL_MBPS_FIELD_NUMBER: _ClassVar[int]
    DISK_IO_FREE_MBPS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_IO_TOTAL_MBPS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_IO_FREE_MBPS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    reachable: bool
    memory_total_mb: int
    memory_free_mb: int
    cpu_total_millicores: int
    cpu_free_millicores: int
    running_tasks: int
    tiers: _containers.RepeatedScalarFieldContainer[_common_pb2.SandboxTier]
    labels: _containers.ScalarMap[str, str]
    last_heartbeat_ms: int
    accepting: bool
    max_tasks: int
    disk_io_total_mbps: int
    disk_io_free_mbps: int
    network_io_total_mbps: int
    network_io_free_mbps: int
    def __init__(self, node_id: _Optional[str] = ..., reachable: _Optional[bool] = ..., memory_total_mb: _Optional[int] = ..., memory_free_mb: _Optional[int] = ..., cpu_total_millicores: _Optional[int] = ..., cpu_free_millicores: _Optional[int] = ..., running_tasks: _Optional[int] = ..., tiers: _Optional[_Iterable[_Union[_common_pb2.SandboxTier, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., last_heartbeat_ms: _Optional[int] = ..., accepting: _Optional[bool] = ..., max_tasks: _Optional[int] = ..., disk_io_total_mbps: _Optional[int] = ..., disk_io_free_mbps: _Optional[int] = ..., network_io_total_mbps: _Optional[int] = ..., network_io_free_mbps: _Optional[int] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ("requeued", "failed")
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    requeued: _containers.RepeatedScalarFieldContainer[str]
    failed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, requeued: _Optional[_Iterable[str]] = ..., failed: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchQueueRequest(_message.Message):
    __slots__ = ("agent_id", "snapshot")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    snapshot: bool
    def __init__(self, agent_id: _Optional[str] = ..., snapshot: _Optional[bool] = ...) -> None: ...

class QueueEvent(_message.Message):
    __slots__ = ("task", "event", "timestamp_ms")
    TASK_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    task: Task
    event: str
    timestamp_ms: int
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., event: _Optional[str] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class RunSpec(_message.Message):
    __slots__ = ("image", "command", "env", "code", "network", "max_processes")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    MAX_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    code: bytes
    network: bool
    max_processes: int
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., code: _Optional[bytes] = ..., network: _Optional[bool] = ..., max_processes: _Optional[int] = ...) -> None: ...
