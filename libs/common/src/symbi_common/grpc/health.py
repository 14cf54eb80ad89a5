"""Client side of the standard gRPC health service."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from symbi_common.grpc.client import ChannelOptions, channel_credentials

__all__ = ["check_health", "wait_for_health"]

_NAMES = {v: k for k, v in health_pb2.HealthCheckResponse.ServingStatus.items()}


def _channel(target: str, tls: ChannelOptions | None) -> grpc.aio.Channel:
    if tls is None or not tls.tls:
        return grpc.aio.insecure_channel(target)
    options = (
        [("grpc.ssl_target_name_override", tls.tls_server_name)] if tls.tls_server_name else []
    )
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=options)


async def check_health(
    target: str, service: str = "", timeout_s: float = 2.0, *, tls: ChannelOptions | None = None
) -> str:
    """``SERVING``, ``NOT_SERVING``, ``SERVICE_UNKNOWN`` … or ``UNREACHABLE``; over mTLS when
    ``tls`` carries a CA (and a client certificate)."""
    async with _channel(target, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return "SERVICE_UNKNOWN"
            return "UNREACHABLE"
    name: str = _NAMES.get(response.status, "UNKNOWN")
    return name


async def wait_for_health(
    target: str,
    want: str = "SERVING",
    *,
    service: str = "",
    timeout_s: float = 20.0,
    tls: ChannelOptions | None = None,
) -> str:
    """Poll until the health status is ``want``; raises TimeoutError with the last status."""
    deadline = time.monotonic() + timeout_s
    status = "UNREACHABLE"
    while time.monotonic() < deadline:
        status = await check_health(target, service, timeout_s=min(2.0, timeout_s), tls=tls)
        if status == want:
            return status
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{target} health is {status}, not {want}, after {timeout_s:.0f} s")
