from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_MALFORMED: _ClassVar[RejectReason]
    REJECT_REASON_BAD_SIGNATURE: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_SENDER: _ClassVar[RejectReason]
    REJECT_REASON_EXPIRED_SENDER: _ClassVar[RejectReason]
    REJECT_REASON_REVOKED_SENDER: _ClassVar[RejectReason]
    REJECT_REASON_REPLAY: _ClassVar[RejectReason]
    REJECT_REASON_EXPIRED: _ClassVar[RejectReason]
    REJECT_REASON_CLOCK_SKEW: _ClassVar[RejectReason]
    REJECT_REASON_UNDECRYPTABLE: _ClassVar[RejectReason]
    REJECT_REASON_OVERSIZED: _ClassVar[RejectReason]
    REJECT_REASON_RATE_LIMITED: _ClassVar[RejectReason]
    REJECT_REASON_WRONG_RECIPIENT: _ClassVar[RejectReason]
    REJECT_REASON_NOT_AUTHORIZED: _ClassVar[RejectReason]
    REJECT_REASON_SUBJECT_MISMATCH: _ClassVar[RejectReason]
    REJECT_REASON_UNSUPPORTED_VERSION: _ClassVar[RejectReason]
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_MALFORMED: RejectReason
REJECT_REASON_BAD_SIGNATURE: RejectReason
REJECT_REASON_UNKNOWN_SENDER: RejectReason
REJECT_REASON_EXPIRED_SENDER: RejectReason
REJECT_REASON_REVOKED_SENDER: RejectReason
REJECT_REASON_REPLAY: RejectReason
REJECT_REASON_EXPIRED: RejectReason
REJECT_REASON_CLOCK_SKEW: RejectReason
REJECT_REASON_UNDECRYPTABLE: RejectReason
REJECT_REASON_OVERSIZED: RejectReason
REJECT_REASON_RATE_LIMITED: RejectReason
REJECT_REASON_WRONG_RECIPIENT: RejectReason
REJECT_REASON_NOT_AUTHORIZED: RejectReason
REJECT_REASON_SUBJECT_MISMATCH: RejectReason
REJECT_REASON_UNSUPPORTED_VERSION: RejectReason

class Envelope(_message.Message):
    __slots__ = ("version", "id", "sender", "sender_key_id", "recipient", "topic", "subject", "timestamp_ms", "ttl_ms", "content_type", "key_id", "nonce", "ciphertext", "trace", "reply_to", "correlation_id", "signature")
    class TraceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SENDER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    version: int
    id: str
    sender: str
    sender_key_id: str
    recipient: str
    topic: str
    subject: str
    timestamp_ms: int
    ttl_ms: int
    content_type: str
    key_id: str
    nonce: bytes
    ciphertext: bytes
    trace: _containers.ScalarMap[str, str]
    reply_to: str
    correlation_id: str
    signature: bytes
    def __init__(self, version: _Optional[int] = ..., id: _Optional[str] = ..., sender: _Optional[str] = ..., sender_key_id: _Optional[str] = ..., recipient: _Optional[str] = ..., topic: _Optional[str] = ..., subject: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., content_type: _Optional[str] = ..., key_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., trace: _Optional[_Mapping[str, str]] = ..., reply_to: _Optional[str] = ..., correlation_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PrincipalCertificate(_message.Message):
    __slots__ = ("version", "principal_id", "role", "ed25519_public_key", "x25519_public_key", "not_before_ms", "not_after_ms", "issuer_key_id", "signature")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ED25519_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    X25519_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    version: int
    principal_id: str
    role: str
    ed25519_public_key: bytes
    x25519_public_key: bytes
    not_before_ms: int
    not_after_ms: int
    issuer_key_id: str
    signature: bytes
    def __init__(self, version: _Optional[int] = ..., principal_id: _Optional[str] = ..., role: _Optional[str] = ..., ed25519_public_key: _Optional[bytes] = ..., x25519_public_key: _Optional[bytes] = ..., not_before_ms: _Optional[int] = ..., not_after_ms: _Optional[int] = ..., issuer_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Revocation(_message.Message):
    __slots__ = ("principal_id", "key_id", "revoked_at_ms", "reason", "issuer_key_id", "signature")
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    principal_id: str
    key_id: str
    revoked_at_ms: int
    reason: str
    issuer_key_id: str
    signature: bytes
    def __init__(self, principal_id: _Optional[str] = ..., key_id: _Optional[str] = ..., revoked_at_ms: _Optional[int] = ..., reason: _Optional[str] = ..., issuer_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SealedGroupKey(_message.Message):
    __slots__ = ("topic", "generation", "member_id", "member_key_id", "sealed_key", "issuer", "issued_at_ms", "signature", "issuer_key_id")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_KEY_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    topic: str
    generation: int
    member_id: str
    member_key_id: str
    sealed_key: bytes
    issuer: str
    issued_at_ms: int
    signature: bytes
    issuer_key_id: str
    def __init__(self, topic: _Optional[str] = ..., generation: _Optional[int] = ..., member_id: _Optional[str] = ..., member_key_id: _Optional[str] = ..., sealed_key: _Optional[bytes] = ..., issuer: _Optional[str] = ..., issued_at_ms: _Optional[int] = ..., signature: _Optional[bytes] = ..., issuer_key_id: _Optional[str] = ...) -> None: ...
