"""Helpers for tests that run the context service as a real process (``python -m
symbi_context``) against the test's NATS server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from contextlib import asynccontextmanager

import grpc
import nats
import pytest

from symbi.context.v1 import context_pb2 as pb
from symbi.context.v1 import context_pb2_grpc as pb_grpc
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.bus import BusEndpoint
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.errors import SymbiError
from symbi_common.grpc import error_from_rpc, open_channel
from symbi_common.launcher import ServiceProcess
from symbi_testing.services import ServiceCluster

#: The feature-hashing embedder: instant start, for tests that are not about retrieval
#: quality (the ONNX model takes seconds to load on two cores).
HASHING = {"SYMBI_CONTEXT__EMBEDDING_KIND": "hashing"}


async def start_context(
    services: ServiceCluster,
    *,
    instance: str = "a",
    env: Mapping[str, str] | None = None,
    embedder: str = "hashing",
) -> ServiceProcess:
    return await services.start_serving(
        "context",
        instance=instance,
        env={"SYMBI_CONTEXT__EMBEDDING_KIND": embedder, **(env or {})},
    )


@asynccontextmanager
async def context_stub(process: ServiceProcess) -> AsyncIterator[pb_grpc.ContextServiceStub]:
    assert process.grpc_address is not None
    async with open_channel(process.grpc_address) as channel:
        yield pb_grpc.ContextServiceStub(channel)


@asynccontextmanager
async def policy_stub(process: ServiceProcess) -> AsyncIterator[policy_pb2_grpc.PolicyServiceStub]:
    assert process.grpc_address is not None
    async with open_channel(process.grpc_address) as channel:
        yield policy_pb2_grpc.PolicyServiceStub(channel)


async def rpc_error(call: Awaitable[object]) -> SymbiError:
    """The SymbiError a gRPC call fails with (the test fails if it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return error_from_rpc(exc)
    pytest.fail("the call succeeded; an error was expected")


async def put_policy(process: ServiceProcess, policy_id: str, source: str) -> None:
    async with policy_stub(process) as stub:
        await stub.PutPolicy(policy_pb2.PutPolicyRequest(id=policy_id, source=source), timeout=10)


async def register_agents(process: ServiceProcess, *agent_ids: str) -> None:
    """What the lifecycle service does on create (contract C2): agents become entities."""
    entities = [
        policy_pb2.Entity(uid=policy_pb2.EntityRef(type="Agent", id=agent)) for agent in agent_ids
    ]
    async with policy_stub(process) as stub:
        await stub.PutEntities(policy_pb2.PutEntitiesRequest(entities=entities), timeout=10)


def memory(content: str, **fields: object) -> pb.MemoryItem:
    return pb.MemoryItem(content=content, **fields)  # type: ignore[arg-type]


async def ingest_stream(
    stub: pb_grpc.ContextServiceStub, messages: Iterable[pb.IngestRequest]
) -> pb.IngestResponse:
    async def gen() -> AsyncIterator[pb.IngestRequest]:
        for m in messages:
            yield m

    return await stub.Ingest(gen(), timeout=60)


@asynccontextmanager
async def bus_endpoint(
    services: ServiceCluster, principal: str, role: str
) -> AsyncIterator[BusEndpoint]:
    """An in-process principal on the test's bus (a node, an agent, a service)."""
    assert services.nats_url is not None
    credentials = services.authority.issue(principal, role)
    nc = await nats.connect(services.nats_url, inbox_prefix=inbox_prefix(principal))
    endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials)
    runner = asyncio.create_task(endpoint.run())
    try:
        yield endpoint
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await nc.close()
