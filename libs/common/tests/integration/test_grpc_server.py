"""The gRPC server factory: errors become statuses, internals never leak, health, reflection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.config import GrpcSection
from symbi_common.errors import InvalidArgument
from symbi_common.grpc import GrpcServer, error_from_rpc
from symbi_common.service import binding


class Servicer(policy_pb2_grpc.PolicyServiceServicer):
    async def Validate(self, request: Any, context: Any) -> policy_pb2.ValidateResponse:
        if request.source == "bad":
            raise InvalidArgument("policy text is empty", reason="EMPTY", details={"line": "1"})
        if request.source == "boom":
            raise ValueError("database password is hunter2")
        if request.source == "slow":
            await asyncio.sleep(5)
        return policy_pb2.ValidateResponse(valid=True)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[GrpcServer]:
    section = GrpcSection(port=0, default_deadline_s=0.3)
    srv = GrpcServer(
        section,
        [
            binding(
                policy_pb2,
                "PolicyService",
                policy_pb2_grpc.add_PolicyServiceServicer_to_server,
                Servicer(),
            )
        ],
    )
    await srv.start()
    yield srv
    await srv.stop(0)


@pytest_asyncio.fixture
async def channel(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


async def call(
    channel: grpc.aio.Channel, source: str, timeout: float | None = 5
) -> policy_pb2.ValidateResponse:
    return await policy_pb2_grpc.PolicyServiceStub(channel).Validate(
        policy_pb2.ValidateRequest(source=source), timeout=timeout
    )


async def test_symbi_error_becomes_its_status_with_details(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(channel, "bad")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = error_from_rpc(info.value)
    assert isinstance(error, InvalidArgument)
    assert error.reason == "EMPTY"
    assert dict(error.details) == {"line": "1"}


async def test_unknown_error_is_internal_and_does_not_leak(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(channel, "boom")
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (info.value.details() or "")
    assert "incident" in (info.value.details() or "")


async def test_default_deadline_applies_to_calls_without_one(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(channel, "slow", timeout=None)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_unimplemented_methods_say_so(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await policy_pb2_grpc.PolicyServiceStub(channel).Evaluate(
            policy_pb2.EvaluateRequest(), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_health_follows_set_serving(server: GrpcServer, channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    name = "symbi.policy.v1.PolicyService"
    response = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await server.set_serving(True)
    for service in ("", name):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = []
    async for response in stub.ServerReflectionInfo(requests(), timeout=5):
        names = [s.name for s in response.list_services_response.service]
    assert "symbi.policy.v1.PolicyService" in names
    assert "grpc.health.v1.Health" in names


async def test_metrics_count_requests_by_method_and_code(channel: grpc.aio.Channel) -> None:
    labels = {
        "grpc_service": "symbi.policy.v1.PolicyService",
        "grpc_method": "Validate",
        "grpc_code": "OK",
    }
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    await call(channel, "fine")
    assert REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 1
