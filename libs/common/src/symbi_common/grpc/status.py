"""SymbiError ↔ gRPC status.

A failed RPC carries a human message in the status details and a serialized
``symbi.common.v1.ErrorInfo`` in the ``symbi-error-bin`` trailing metadata, so a Python client
gets the same error class, reason, details and retryability back (:func:`error_from_rpc`).
"""

from __future__ import annotations

import grpc

from symbi.common.v1 import common_pb2
from symbi_common.errors import ErrorCode, SymbiError, error_for_code

__all__ = ["ERROR_METADATA_KEY", "error_from_rpc", "error_info", "status_code"]

ERROR_METADATA_KEY = "symbi-error-bin"

_TO_GRPC: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode[code.name]: code for code in grpc.StatusCode if code.name in ErrorCode.__members__
}
_FROM_GRPC: dict[grpc.StatusCode, ErrorCode] = {v: k for k, v in _TO_GRPC.items()}


def status_code(error: SymbiError) -> grpc.StatusCode:
    """The gRPC status code of an error."""
    return _TO_GRPC.get(error.code, grpc.StatusCode.INTERNAL)


def error_info(error: SymbiError) -> common_pb2.ErrorInfo:
    """The structured details of an error, as sent to clients."""
    return common_pb2.ErrorInfo(
        reason=error.reason,
        message=error.message,
        metadata=dict(error.details),
        retryable=error.retryable,
    )


def _pair(item: object) -> tuple[object, object]:
    # aio metadata iterates as (key, value) tuples; the sync API yields objects with attributes
    if isinstance(item, tuple):
        return item[0], item[1]
    return getattr(item, "key", None), getattr(item, "value", None)


def error_from_rpc(exc: grpc.RpcError) -> SymbiError:
    """Rebuild the SymbiError a server raised from the RpcError a client received."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = (exc.details() if hasattr(exc, "details") else None) or str(code)
    info: common_pb2.ErrorInfo | None = None
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for item in trailing or ():
        key, value = _pair(item)
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            info = common_pb2.ErrorInfo.FromString(value)
    error_code = _FROM_GRPC.get(code, ErrorCode.INTERNAL)
    cls = error_for_code(error_code)
    if info is not None:
        details = dict(info.metadata)
        for violation in info.violations:
            details.setdefault(violation.field or "violation", violation.description)
        return cls(
            info.message or message,
            reason=info.reason or None,
            details=details,
            retryable=info.retryable,
        )
    return cls(message, reason=code.name if code else None)
