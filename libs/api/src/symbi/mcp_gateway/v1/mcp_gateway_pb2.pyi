from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ToolStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_STATUS_UNSPECIFIED: _ClassVar[ToolStatus]
    TOOL_STATUS_VERIFIED: _ClassVar[ToolStatus]
    TOOL_STATUS_UNSIGNED: _ClassVar[ToolStatus]
    TOOL_STATUS_INVALID: _ClassVar[ToolStatus]
    TOOL_STATUS_QUARANTINED: _ClassVar[ToolStatus]
    TOOL_STATUS_ALLOWED_UNVERIFIED: _ClassVar[ToolStatus]
TOOL_STATUS_UNSPECIFIED: ToolStatus
TOOL_STATUS_VERIFIED: ToolStatus
TOOL_STATUS_UNSIGNED: ToolStatus
TOOL_STATUS_INVALID: ToolStatus
TOOL_STATUS_QUARANTINED: ToolStatus
TOOL_STATUS_ALLOWED_UNVERIFIED: ToolStatus

class ServerLimits(_message.Message):
    __slots__ = ("connection_timeout_ms", "max_concurrent_connections", "call_timeout_ms", "max_result_bytes", "max_argument_bytes", "max_message_bytes", "refresh_interval_s", "max_tools")
    CONNECTION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    CALL_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ARGUMENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    REFRESH_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    MAX_TOOLS_FIELD_NUMBER: _ClassVar[int]
    connection_timeout_ms: int
    max_concurrent_connections: int
    call_timeout_ms: int
    max_result_bytes: int
    max_argument_bytes: int
    max_message_bytes: int
    refresh_interval_s: int
    max_tools: int
    def __init__(self, connection_timeout_ms: _Optional[int] = ..., max_concurrent_connections: _Optional[int] = ..., call_timeout_ms: _Optional[int] = ..., max_result_bytes: _Optional[int] = ..., max_argument_bytes: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., refresh_interval_s: _Optional[int] = ..., max_tools: _Optional[int] = ...) -> None: ...

class McpServer(_message.Message):
    __slots__ = ("name", "transport", "command", "args", "env", "url", "domain", "trust_mode", "connected", "last_error", "state", "tool_count", "limits", "headers", "cwd", "in_flight", "configured")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TRUST_MODE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOOL_COUNT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    name: str
    transport: str
    command: str
    args: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    url: str
    domain: str
    trust_mode: str
    connected: bool
    last_error: str
    state: str
    tool_count: int
    limits: ServerLimits
    headers: _containers.ScalarMap[str, str]
    cwd: str
    in_flight: int
    configured: bool
    def __init__(self, name: _Optional[str] = ..., transport: _Optional[str] = ..., command: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., url: _Optional[str] = ..., domain: _Optional[str] = ..., trust_mode: _Optional[str] = ..., connected: _Optional[bool] = ..., last_error: _Optional[str] = ..., state: _Optional[str] = ..., tool_count: _Optional[int] = ..., limits: _Optional[_Union[ServerLimits, _Mapping]] = ..., headers: _Optional[_Mapping[str, str]] = ..., cwd: _Optional[str] = ..., in_flight: _Optional[int] = ..., configured: _Optional[bool] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("server", "name", "description", "input_schema", "definition_hash", "status", "key_fingerprint", "detail", "title", "output_schema", "annotations", "approved_by", "usable", "exposed_name", "document_json")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    server: str
    name: str
    description: str
    input_schema: _struct_pb2.Struct
    definition_hash: str
    status: ToolStatus
    key_fingerprint: str
    detail: str
    title: str
    output_schema: _struct_pb2.Struct
    annotations: _struct_pb2.Struct
    approved_by: str
    usable: bool
    exposed_name: str
    document_json: str
    def __init__(self, server: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., definition_hash: _Optional[str] = ..., status: _Optional[_Union[ToolStatus, str]] = ..., key_fingerprint: _Optional[str] = ..., detail: _Optional[str] = ..., title: _Optional[str] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., annotations: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., approved_by: _Optional[str] = ..., usable: _Optional[bool] = ..., exposed_name: _Optional[str] = ..., document_json: _Optional[str] = ...) -> None: ...

class RegisterServerRequest(_message.Message):
    __slots__ = ("server", "wait")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    server: McpServer
    wait: bool
    def __init__(self, server: _Optional[_Union[McpServer, _Mapping]] = ..., wait: _Optional[bool] = ...) -> None: ...

class RemoveServerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveServerResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class ListServersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListServersResponse(_message.Message):
    __slots__ = ("servers",)
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    servers: _containers.RepeatedCompositeFieldContainer[McpServer]
    def __init__(self, servers: _Optional[_Iterable[_Union[McpServer, _Mapping]]] = ...) -> None: ...

class ListToolsRequest(_message.Message):
    __slots__ = ("server", "agent_id", "include_hidden")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HIDDEN_FIELD_NUMBER: _ClassVar[int]
    server: str
    agent_id: str
    include_hidden: bool
    def __init__(self, server: _Optional[str] = ..., agent_id: _Optional[str] = ..., include_hidden: _Optional[bool] = ...) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    def __init__(self, tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ...) -> None: ...

class InvokeToolRequest(_message.Message):
    __slots__ = ("agent_id", "server", "tool", "arguments", "timeout_ms", "arguments_json")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    server: str
    tool: str
    arguments: _struct_pb2.Struct
    timeout_ms: int
    arguments_json: str
    def __init__(self, agent_id: _Optional[str] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout_ms: _Optional[int] = ..., arguments_json: _Optional[str] = ...) -> None: ...

class InvokeToolResponse(_message.Message):
    __slots__ = ("is_error", "structured_content", "text", "result_hash", "duration_ms", "arguments_hash", "content_json", "result_bytes", "duration_ms_exact", "has_structured_content")
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RESULT_HASH_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_HASH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_EXACT_FIELD_NUMBER: _ClassVar[int]
    HAS_STRUCTURED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    is_error: bool
    structured_content: _struct_pb2.Struct
    text: _containers.RepeatedScalarFieldContainer[str]
    result_hash: str
    duration_ms: int
    arguments_hash: str
    content_json: str
    result_bytes: int
    duration_ms_exact: float
    has_structured_content: bool
    def __init__(self, is_error: _Optional[bool] = ..., structured_content: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., text: _Optional[_Iterable[str]] = ..., result_hash: _Optional[str] = ..., duration_ms: _Optional[int] = ..., arguments_hash: _Optional[str] = ..., content_json: _Optional[str] = ..., result_bytes: _Optional[int] = ..., duration_ms_exact: _Optional[float] = ..., has_structured_content: _Optional[bool] = ...) -> None: ...

class VerifyToolRequest(_message.Message):
    __slots__ = ("server", "tool")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    server: str
    tool: str
    def __init__(self, server: _Optional[str] = ..., tool: _Optional[str] = ...) -> None: ...

class Pin(_message.Message):
    __slots__ = ("tool_id", "domain", "key_fingerprint", "pinned_at_ms", "definition_hash", "approved_by", "updated_at_ms", "server", "tool")
    TOOL_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PINNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_HASH_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    tool_id: str
    domain: str
    key_fingerprint: str
    pinned_at_ms: int
    definition_hash: str
    approved_by: str
    updated_at_ms: int
    server: str
    tool: str
    def __init__(self, tool_id: _Optional[str] = ..., domain: _Optional[str] = ..., key_fingerprint: _Optional[str] = ..., pinned_at_ms: _Optional[int] = ..., definition_hash: _Optional[str] = ..., approved_by: _Optional[str] = ..., updated_at_ms: _Optional[int] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ...) -> None: ...

class ListPinsRequest(_message.Message):
    __slots__ = ("server",)
    SERVER_FIELD_NUMBER: _ClassVar[int]
    server: str
    def __init__(self, server: _Optional[str] = ...) -> None: ...

class ListPinsResponse(_message.Message):
    __slots__ = ("pins",)
    PINS_FIELD_NUMBER: _ClassVar[int]
    pins: _containers.RepeatedCompositeFieldContainer[Pin]
    def __init__(self, pins: _Optional[_Iterable[_Union[Pin, _Mapping]]] = ...) -> None: ...

class UnpinRequest(_message.Message):
    __slots__ = ("tool_id", "actor")
    TOOL_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tool_id: str
    actor: str
    def __init__(self, tool_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class UnpinResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class ApproveToolRequest(_message.Message):
    __slots__ = ("server", "tool", "definition_hash", "actor")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_HASH_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    server: str
    tool: str
    definition_hash: str
    actor: str
    def __init__(self, server: _Optional[str] = ..., tool: _Optional[str] = ..., definition_hash: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class CallApproval(_message.Message):
    __slots__ = ("approval_id", "agent_id", "server", "tool", "arguments_sha256", "state", "policies", "reasons", "created_at_ms", "expires_at_ms", "decided_by", "decided_at_ms", "consumed_at_ms", "expired")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    agent_id: str
    server: str
    tool: str
    arguments_sha256: str
    state: str
    policies: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    created_at_ms: int
    expires_at_ms: int
    decided_by: str
    decided_at_ms: int
    consumed_at_ms: int
    expired: bool
    def __init__(self, approval_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ..., arguments_sha256: _Optional[str] = ..., state: _Optional[str] = ..., policies: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[str]] = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., decided_by: _Optional[str] = ..., decided_at_ms: _Optional[int] = ..., consumed_at_ms: _Optional[int] = ..., expired: _Optional[bool] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("server", "include_closed")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    server: str
    include_closed: bool
    def __init__(self, server: _Optional[str] = ..., include_closed: _Optional[bool] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals",)
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[CallApproval]
    def __init__(self, approvals: _Optional[_Iterable[_Union[CallApproval, _Mapping]]] = ...) -> None: ...

class DecideApprovalRequest(_message.Message):
    __slots__ = ("approval_id", "approve", "server", "tool", "actor")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    approve: bool
    server: str
    tool: str
    actor: str
    def __init__(self, approval_id: _Optional[str] = ..., approve: _Optional[bool] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class IssueAgentTokenRequest(_message.Message):
    __slots__ = ("agent_id", "ttl_s")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    ttl_s: int
    def __init__(self, agent_id: _Optional[str] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class IssueAgentTokenResponse(_message.Message):
    __slots__ = ("token", "expires_at_ms", "endpoint_url")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at_ms: int
    endpoint_url: str
    def __init__(self, token: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., endpoint_url: _Optional[str] = ...) -> None: ...

class SecurityAlert(_message.Message):
    __slots__ = ("kind", "server", "tool", "message", "details", "timestamp_ms", "gateway")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    server: str
    tool: str
    message: str
    details: _struct_pb2.Struct
    timestamp_ms: int
    gateway: str
    def __init__(self, kind: _Optional[str] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ..., message: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timestamp_ms: _Optional[int] = ..., gateway: _Optional[str] = ...) -> None: ...
