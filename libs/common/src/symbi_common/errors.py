"""The error tree shared by every Symbi service.

Domain code raises these; the gRPC interceptor (``symbi_common.grpc``) maps them to status
codes, and bus handlers use ``retryable`` to choose between ``nak(delay)`` and ``term()``.
Domain modules import nothing from grpc: the mapping lives at the edge.

::

    SymbiError                      INTERNAL (base; unknown failures)
    ├── InvalidArgument             INVALID_ARGUMENT   bad input from outside
    │   └── ConfigError             (exit code 2 at start-up, never sent over the wire)
    ├── NotFound                    NOT_FOUND
    ├── AlreadyExists               ALREADY_EXISTS
    ├── FailedPrecondition          FAILED_PRECONDITION  valid request, wrong state
    ├── Aborted                     ABORTED            lost a compare-and-set race
    ├── PermissionDenied            PERMISSION_DENIED  policy said no
    ├── Unauthenticated             UNAUTHENTICATED    bad or missing credentials
    ├── ResourceExhausted           RESOURCE_EXHAUSTED rate or size limit   (retryable)
    ├── Unavailable                 UNAVAILABLE        dependency down      (retryable)
    ├── DeadlineExceeded            DEADLINE_EXCEEDED  ran out of time      (retryable)
    └── Unimplemented               UNIMPLEMENTED      not built (yet)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ConfigError",
    "DeadlineExceeded",
    "ErrorCode",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SymbiError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "error_for_code",
]


class ErrorCode(enum.Enum):
    """Status codes, named as gRPC names them (the values are gRPC's numbers)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class SymbiError(Exception):
    """Root of every error Symbi raises on purpose.

    ``message`` is safe to show to the caller; ``details`` carries machine-readable context
    (field names, positions, limits) that clients receive as structured error details;
    ``reason`` is a short stable UPPER_SNAKE identifier for programs to switch on.
    """

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        details: Mapping[str, str] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or type(self).__name__.upper()
        self.details: Mapping[str, str] = MappingProxyType(dict(details or {}))
        self.retryable = self.default_retryable if retryable is None else retryable

    def __repr__(self) -> str:
        extra = f", details={dict(self.details)!r}" if self.details else ""
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r}{extra})"


class InvalidArgument(SymbiError):
    """Input from outside was malformed or out of range; the message names what and why."""

    code = ErrorCode.INVALID_ARGUMENT


class ConfigError(InvalidArgument):
    """Configuration is invalid. Processes print the message and exit with status 2."""


class NotFound(SymbiError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(SymbiError):
    code = ErrorCode.ALREADY_EXISTS


class FailedPrecondition(SymbiError):
    """The request is well formed but the system is not in a state to do it."""

    code = ErrorCode.FAILED_PRECONDITION


class Aborted(SymbiError):
    """A concurrent writer won (compare-and-set lost); the caller may re-read and retry."""

    code = ErrorCode.ABORTED


class PermissionDenied(SymbiError):
    code = ErrorCode.PERMISSION_DENIED


class Unauthenticated(SymbiError):
    code = ErrorCode.UNAUTHENTICATED


class ResourceExhausted(SymbiError):
    code = ErrorCode.RESOURCE_EXHAUSTED
    default_retryable = True


class Unavailable(SymbiError):
    code = ErrorCode.UNAVAILABLE
    default_retryable = True


class DeadlineExceeded(SymbiError):
    code = ErrorCode.DEADLINE_EXCEEDED
    default_retryable = True


class Unimplemented(SymbiError):
    code = ErrorCode.UNIMPLEMENTED


_BY_CODE: dict[ErrorCode, type[SymbiError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Unimplemented,
    )
}


def error_for_code(code: ErrorCode) -> type[SymbiError]:
    """The error class a status code maps back to (``SymbiError`` for the rest)."""
    return _BY_CODE.get(code, SymbiError)
