from symbi.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATE_UNSPECIFIED: _ClassVar[AgentState]
    AGENT_STATE_CREATED: _ClassVar[AgentState]
    AGENT_STATE_INITIALIZING: _ClassVar[AgentState]
    AGENT_STATE_READY: _ClassVar[AgentState]
    AGENT_STATE_RUNNING: _ClassVar[AgentState]
    AGENT_STATE_SUSPENDED: _ClassVar[AgentState]
    AGENT_STATE_WAITING: _ClassVar[AgentState]
    AGENT_STATE_COMPLETED: _ClassVar[AgentState]
    AGENT_STATE_FAILED: _ClassVar[AgentState]
    AGENT_STATE_TERMINATING: _ClassVar[AgentState]
    AGENT_STATE_TERMINATED: _ClassVar[AgentState]
AGENT_STATE_UNSPECIFIED: AgentState
AGENT_STATE_CREATED: AgentState
AGENT_STATE_INITIALIZING: AgentState
AGENT_STATE_READY: AgentState
AGENT_STATE_RUNNING: AgentState
AGENT_STATE_SUSPENDED: AgentState
AGENT_STATE_WAITING: AgentState
AGENT_STATE_COMPLETED: AgentState
AGENT_STATE_FAILED: AgentState
AGENT_STATE_TERMINATING: AgentState
AGENT_STATE_TERMINATED: AgentState

class CreateAgentRequest(_message.Message):
    __slots__ = ("dsl", "toml", "yaml", "file_name", "agent_id", "owner", "name")
    DSL_FIELD_NUMBER: _ClassVar[int]
    TOML_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    dsl: str
    toml: str
    yaml: str
    file_name: str
    agent_id: str
    owner: str
    name: str
    def __init__(self, dsl: _Optional[str] = ..., toml: _Optional[str] = ..., yaml: _Optional[str] = ..., file_name: _Optional[str] = ..., agent_id: _Optional[str] = ..., owner: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("id", "name", "state", "revision", "capabilities", "tier", "limits", "source", "policy_ids", "created_at_ms", "updated_at_ms", "reason", "restarts", "owner", "task_id", "restart_at_ms", "max_restarts", "source_format", "source_file", "version", "description", "definition_json", "scheduled")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    POLICY_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RESTART_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FILE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    state: AgentState
    revision: int
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    tier: _common_pb2.SandboxTier
    limits: _common_pb2.ResourceLimits
    source: str
    policy_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at_ms: int
    updated_at_ms: int
    reason: str
    restarts: int
    owner: str
    task_id: str
    restart_at_ms: int
    max_restarts: int
    source_format: str
    source_file: str
    version: str
    description: str
    definition_json: str
    scheduled: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[AgentState, str]] = ..., revision: _Optional[int] = ..., capabilities: _Optional[_Iterable[str]] = ..., tier: _Optional[_Union[_common_pb2.SandboxTier, str]] = ..., limits: _Optional[_Union[_common_pb2.ResourceLimits, _Mapping]] = ..., source: _Optional[str] = ..., policy_ids: _Optional[_Iterable[str]] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., reason: _Optional[str] = ..., restarts: _Optional[int] = ..., owner: _Optional[str] = ..., task_id: _Optional[str] = ..., restart_at_ms: _Optional[int] = ..., max_restarts: _Optional[int] = ..., source_format: _Optional[str] = ..., source_file: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., definition_json: _Optional[str] = ..., scheduled: _Optional[bool] = ...) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("id", "include_definition")
    ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    id: str
    include_definition: bool
    def __init__(self, id: _Optional[str] = ..., include_definition: _Optional[bool] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("state", "name_prefix", "page", "owner")
    STATE_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    state: AgentState
    name_prefix: str
    page: _common_pb2.PageRequest
    owner: str
    def __init__(self, state: _Optional[_Union[AgentState, str]] = ..., name_prefix: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "page", "total")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    page: _common_pb2.PageResponse
    total: int
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., page: _Optional[_Union[_common_pb2.PageResponse, _Mapping]] = ..., total: _Optional[int] = ...) -> None: ...

class TransitionRequest(_message.Message):
    __slots__ = ("id", "reason", "expected_revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    expected_revision: int
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class WatchAgentRequest(_message.Message):
    __slots__ = ("id", "include_current")
    ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CURRENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    include_current: bool
    def __init__(self, id: _Optional[str] = ..., include_current: _Optional[bool] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("agent_id", "from_state", "to_state", "reason", "revision", "timestamp_ms", "actor", "seq", "task_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    from_state: AgentState
    to_state: AgentState
    reason: str
    revision: int
    timestamp_ms: int
    actor: str
    seq: int
    task_id: str
    def __init__(self, agent_id: _Optional[str] = ..., from_state: _Optional[_Union[AgentState, str]] = ..., to_state: _Optional[_Union[AgentState, str]] = ..., reason: _Optional[str] = ..., revision: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., actor: _Optional[str] = ..., seq: _Optional[int] = ..., task_id: _Optional[str] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("transitions", "truncated")
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    truncated: bool
    def __init__(self, transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...
