from google.protobuf import struct_pb2 as _struct_pb2
from symbi.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_DENY: _ClassVar[Decision]
    DECISION_ALLOW_WITH_CONDITIONS: _ClassVar[Decision]
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_DENY: Decision
DECISION_ALLOW_WITH_CONDITIONS: Decision

class EntityRef(_message.Message):
    __slots__ = ("type", "id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class Entity(_message.Message):
    __slots__ = ("uid", "attrs", "parents")
    UID_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    uid: EntityRef
    attrs: _struct_pb2.Struct
    parents: _containers.RepeatedCompositeFieldContainer[EntityRef]
    def __init__(self, uid: _Optional[_Union[EntityRef, _Mapping]] = ..., attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parents: _Optional[_Iterable[_Union[EntityRef, _Mapping]]] = ...) -> None: ...

class AuthorizationRequest(_message.Message):
    __slots__ = ("principal", "action", "resource", "context", "entities")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    principal: EntityRef
    action: str
    resource: EntityRef
    context: _struct_pb2.Struct
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    def __init__(self, principal: _Optional[_Union[EntityRef, _Mapping]] = ..., action: _Optional[str] = ..., resource: _Optional[_Union[EntityRef, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ...) -> None: ...

class DecisionResult(_message.Message):
    __slots__ = ("decision", "reasons", "conditions", "policies", "version", "cached", "entities_version", "fail_closed")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_VERSION_FIELD_NUMBER: _ClassVar[int]
    FAIL_CLOSED_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    reasons: _containers.RepeatedScalarFieldContainer[str]
    conditions: _containers.RepeatedScalarFieldContainer[str]
    policies: _containers.RepeatedScalarFieldContainer[str]
    version: int
    cached: bool
    entities_version: int
    fail_closed: bool
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., conditions: _Optional[_Iterable[str]] = ..., policies: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., cached: _Optional[bool] = ..., entities_version: _Optional[int] = ..., fail_closed: _Optional[bool] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: AuthorizationRequest
    def __init__(self, request: _Optional[_Union[AuthorizationRequest, _Mapping]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: DecisionResult
    def __init__(self, result: _Optional[_Union[DecisionResult, _Mapping]] = ...) -> None: ...

class EvaluateBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[AuthorizationRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[AuthorizationRequest, _Mapping]]] = ...) -> None: ...

class EvaluateBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecisionResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecisionResult, _Mapping]]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("id", "source", "version", "updated_at_ms", "updated_by", "origin")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    version: int
    updated_at_ms: int
    updated_by: str
    origin: str
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., version: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., updated_by: _Optional[str] = ..., origin: _Optional[str] = ...) -> None: ...

class PutPolicyRequest(_message.Message):
    __slots__ = ("id", "source", "expected_version", "origin")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    expected_version: int
    origin: str
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., expected_version: _Optional[int] = ..., origin: _Optional[str] = ...) -> None: ...

class PutPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListPoliciesRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("policies", "page", "version")
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    page: _common_pb2.PageResponse
    version: int
    def __init__(self, policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ..., page: _Optional[_Union[_common_pb2.PageResponse, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class DeletePolicyRequest(_message.Message):
    __slots__ = ("id", "expected_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    expected_version: int
    def __init__(self, id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeletePolicyResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class ValidateRequest(_message.Message):
    __slots__ = ("source", "file")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    source: str
    file: str
    def __init__(self, source: _Optional[str] = ..., file: _Optional[str] = ...) -> None: ...

class ValidateResponse(_message.Message):
    __slots__ = ("valid", "errors")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldViolation]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.FieldViolation, _Mapping]]] = ...) -> None: ...

class PutEntitiesRequest(_message.Message):
    __slots__ = ("entities",)
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ...) -> None: ...

class PutEntitiesResponse(_message.Message):
    __slots__ = ("entities_version",)
    ENTITIES_VERSION_FIELD_NUMBER: _ClassVar[int]
    entities_version: int
    def __init__(self, entities_version: _Optional[int] = ...) -> None: ...

class DeleteEntitiesRequest(_message.Message):
    __slots__ = ("uids",)
    UIDS_FIELD_NUMBER: _ClassVar[int]
    uids: _containers.RepeatedCompositeFieldContainer[EntityRef]
    def __init__(self, uids: _Optional[_Iterable[_Union[EntityRef, _Mapping]]] = ...) -> None: ...

class DeleteEntitiesResponse(_message.Message):
    __slots__ = ("entities_version",)
    ENTITIES_VERSION_FIELD_NUMBER: _ClassVar[int]
    entities_version: int
    def __init__(self, entities_version: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PolicyRejection(_message.Message):
    __slots__ = ("version", "entities_version", "at_ms", "errors")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_VERSION_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    version: int
    entities_version: int
    at_ms: int
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldViolation]
    def __init__(self, version: _Optional[int] = ..., entities_version: _Optional[int] = ..., at_ms: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.FieldViolation, _Mapping]]] = ...) -> None: ...

class PolicyStatus(_message.Message):
    __slots__ = ("version", "entities_version", "digest", "documents", "policies", "entities", "installed_at_ms", "last_rejection", "instance")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_REJECTION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    version: int
    entities_version: int
    digest: str
    documents: int
    policies: int
    entities: int
    installed_at_ms: int
    last_rejection: PolicyRejection
    instance: str
    def __init__(self, version: _Optional[int] = ..., entities_version: _Optional[int] = ..., digest: _Optional[str] = ..., documents: _Optional[int] = ..., policies: _Optional[int] = ..., entities: _Optional[int] = ..., installed_at_ms: _Optional[int] = ..., last_rejection: _Optional[_Union[PolicyRejection, _Mapping]] = ..., instance: _Optional[str] = ...) -> None: ...
