"""Helpers for tests against real policy service processes on the test NATS server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest_asyncio

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.bus import BusEndpoint
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import NatsSection
from symbi_common.errors import SymbiError
from symbi_common.grpc import error_from_rpc, open_channel
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.launcher import ServiceProcess
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

BASE = """\
@id("trusted-publish")
permit(principal is Symbi::Agent, action == Symbi::Action::"publish", resource)
when { principal has trust && principal.trust == "trusted" };

@id("no-secret")
@reason("topic secret is off limits")
forbid(principal, action == Symbi::Action::"publish", resource == Symbi::Topic::"secret");
"""

ENTITIES = [
    {"uid": {"type": "Agent", "id": "a"}, "attrs": {"trust": "trusted"}},
    {"uid": {"type": "Agent", "id": "b"}, "attrs": {"trust": "untrusted"}},
    {"uid": {"type": "Topic", "id": "t"}},
    {"uid": {"type": "Topic", "id": "secret"}},
]


def entity(raw: Mapping[str, Any]) -> policy_pb2.Entity:
    message = policy_pb2.Entity(uid=policy_pb2.EntityRef(**raw["uid"]))
    message.attrs.update(dict(raw.get("attrs", {})))
    return message


def question(
    principal: str, action: str, resource: tuple[str, str], **context: Any
) -> policy_pb2.AuthorizationRequest:
    request = policy_pb2.AuthorizationRequest(
        principal=policy_pb2.EntityRef(type="Agent", id=principal),
        action=action,
        resource=policy_pb2.EntityRef(type=resource[0], id=resource[1]),
    )
    request.context.update(context)
    return request


@dataclass
class Replica:
    """One policy service process and a gRPC stub to it."""

    process: ServiceProcess
    stub: Any  # PolicyServiceAsyncStub

    async def call(self, method: str, request: Any, timeout: float = 5.0) -> Any:
        """Call ``method``; a failed RPC raises the SymbiError the server raised."""
        try:
            return await getattr(self.stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    async def evaluate(self, request: policy_pb2.AuthorizationRequest) -> policy_pb2.DecisionResult:
        response = await self.call("Evaluate", policy_pb2.EvaluateRequest(request=request))
        return response.result  # type: ignore[no-any-return]

    async def load_base(self) -> int:
        """Store the base policies and entities; returns the policy version."""
        await self.call(
            "PutEntities", policy_pb2.PutEntitiesRequest(entities=[entity(e) for e in ENTITIES])
        )
        put = await self.call("PutPolicy", policy_pb2.PutPolicyRequest(id="base", source=BASE))
        return int(put.policy.version)


@contextlib.asynccontextmanager
async def open_replica(
    services: ServiceCluster, instance: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[Replica]:
    process = await services.start_serving("policy", instance=instance, env=env)
    assert process.grpc_address is not None
    async with open_channel(process.grpc_address) as channel:
        yield Replica(process, policy_pb2_grpc.PolicyServiceStub(channel))


@pytest_asyncio.fixture
async def replica(services: ServiceCluster) -> AsyncIterator[Replica]:
    async with open_replica(services, "a") as opened:
        yield opened


async def open_endpoint(
    nats_server: NatsServerProcess, services: ServiceCluster, principal: str, role: str
) -> tuple[BusEndpoint, asyncio.Task[None], nats.NATS]:
    """A bus endpoint of the test's own cluster (credentials signed by its authority)."""
    credentials = services.authority.issue(principal, role)
    nc = await nats.connect(nats_server.url, inbox_prefix=inbox_prefix(principal))
    js = nc.jetstream()
    if role == "service":
        await Provisioner(js, NatsSection()).provision()
    endpoint = await BusEndpoint.open(nc, js, credentials)
    runner = asyncio.create_task(endpoint.run())
    return endpoint, runner, nc


@pytest_asyncio.fixture
async def caller(
    nats_server: NatsServerProcess, services: ServiceCluster, tmp_path: Path
) -> AsyncIterator[BusEndpoint]:
    """A service principal on the bus (``svc-caller``), once it holds the platform key."""
    endpoint, runner, nc = await open_endpoint(nats_server, services, "svc-caller", "service")
    try:
        await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
        yield endpoint
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await nc.close()


async def expect_error(call: Any) -> SymbiError:
    """The SymbiError an awaitable raises (fails the test when it succeeds)."""
    try:
        await call
    except SymbiError as exc:
        return exc
    raise AssertionError("expected an error")
