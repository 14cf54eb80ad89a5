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

class McpServer(_message.Message):
    __slots__ = ("name", "transport", "command", "args", "env", "url", "domain", "trust_mode", "connected", "last_error")
    class EnvEntry(_message.Message):
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
    def __init__(self, name: _Optional[str] = ..., transport: _Optional[str] = ..., command: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., url: _Optional[str] = ..., domain: _Optional[str] = ..., trust_mode: _Optional[str] = ..., connected: _Optional[bool] = ..., last_error: _Optional[str] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("server", "name", "description", "input_schema", "definition_hash", "status", "key_fingerprint", "detail")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    server: str
    name: str
    description: str
    input_schema: _struct_pb2.Struct
    definition_hash: str
    status: ToolStatus
    key_fingerprint: str
    detail: str
    def __init__(self, server: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., definition_hash: _Optional[str] = ..., status: _Optional[_Union[ToolStatus, str]] = ..., key_fingerprint: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class RegisterServerRequest(_message.Message):
    __slots__ = ("server",)
    SERVER_FIELD_NUMBER: _ClassVar[int]
    server: McpServer
    def __init__(self, server: _Optional[_Union[McpServer, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("agent_id", "server", "tool", "arguments", "timeout_ms")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    server: str
    tool: str
    arguments: _struct_pb2.Struct
    timeout_ms: int
    def __init__(self, agent_id: _Optional[str] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class InvokeToolResponse(_message.Message):
    __slots__ = ("is_error", "structured_content", "text", "result_hash", "duration_ms")
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RESULT_HASH_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    is_error: bool
    structured_content: _struct_pb2.Struct
    text: _containers.RepeatedScalarFieldContainer[str]
    result_hash: str
    duration_ms: int
    def __init__(self, is_error: _Optional[bool] = ..., structured_content: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., text: _Optional[_Iterable[str]] = ..., result_hash: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class VerifyToolRequest(_message.Message):
    __slots__ = ("server", "tool")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    server: str
    tool: str
    def __init__(self, server: _Optional[str] = ..., tool: _Optional[str] = ...) -> None: ...

class Pin(_message.Message):
    __slots__ = ("tool_id", "domain", "key_fingerprint", "pinned_at_ms")
    TOOL_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PINNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    tool_id: str
    domain: str
    key_fingerprint: str
    pinned_at_ms: int
    def __init__(self, tool_id: _Optional[str] = ..., domain: _Optional[str] = ..., key_fingerprint: _Optional[str] = ..., pinned_at_ms: _Optional[int] = ...) -> None: ...

class ListPinsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPinsResponse(_message.Message):
    __slots__ = ("pins",)
    PINS_FIELD_NUMBER: _ClassVar[int]
    pins: _containers.RepeatedCompositeFieldContainer[Pin]
    def __init__(self, pins: _Optional[_Iterable[_Union[Pin, _Mapping]]] = ...) -> None: ...

class UnpinRequest(_message.Message):
    __slots__ = ("tool_id",)
    TOOL_ID_FIELD_NUMBER: _ClassVar[int]
    tool_id: str
    def __init__(self, tool_id: _Optional[str] = ...) -> None: ...

class UnpinResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ApproveToolRequest(_message.Message):
    __slots__ = ("server", "tool", "definition_hash")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_HASH_FIELD_NUMBER: _ClassVar[int]
    server: str
    tool: str
    definition_hash: str
    def __init__(self, server: _Optional[str] = ..., tool: _Optional[str] = ..., definition_hash: _Optional[str] = ...) -> None: ...
