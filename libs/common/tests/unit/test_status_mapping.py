"""SymbiError ↔ gRPC status: every class maps to its code and survives the round trip."""

from __future__ import annotations

import grpc
import pytest

from symbi_common import errors
from symbi_common.grpc.status import ERROR_METADATA_KEY, error_from_rpc, error_info, status_code


class FakeRpcError(grpc.RpcError):
    def __init__(
        self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailing


CASES = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.SymbiError, grpc.StatusCode.INTERNAL),
]


@pytest.mark.parametrize(("cls", "code"), CASES)
def test_each_error_maps_to_its_status(cls: type[errors.SymbiError], code: grpc.StatusCode) -> None:
    assert status_code(cls("x")) == code


@pytest.mark.parametrize(("cls", "code"), CASES)
def test_round_trip_keeps_class_reason_details_and_retryable(
    cls: type[errors.SymbiError], code: grpc.StatusCode
) -> None:
    original = cls("the thing was wrong", reason="THING_WRONG", details={"field": "name"})
    trailing = ((ERROR_METADATA_KEY, error_info(original).SerializeToString()),)
    rebuilt = error_from_rpc(FakeRpcError(code, original.message, trailing))
    assert type(rebuilt) is cls
    assert rebuilt.message == "the thing was wrong"
    assert rebuilt.reason == "THING_WRONG"
    assert dict(rebuilt.details) == {"field": "name"}
    assert rebuilt.retryable == original.retryable


def test_status_without_details_still_maps_the_class() -> None:
    rebuilt = error_from_rpc(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert isinstance(rebuilt, errors.Unavailable)
    assert rebuilt.retryable
    assert rebuilt.message == "connection refused"


def test_retryable_defaults() -> None:
    assert errors.Unavailable("x").retryable
    assert errors.ResourceExhausted("x").retryable
    assert not errors.InvalidArgument("x").retryable
    assert errors.InvalidArgument("x", retryable=True).retryable
