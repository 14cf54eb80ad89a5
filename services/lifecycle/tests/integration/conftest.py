"""Lifecycle processes against a real NATS server (and a real policy service where a test
needs policy)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import grpc
import nats
import pytest
import pytest_asyncio

from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi_common.bus import BusEndpoint
from symbi_common.grpc import error_from_rpc, open_channel
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.launcher import ServiceProcess
from symbi_testing import ServiceCluster, eventually

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "agents"

#: Lifecycle without policy checks, for tests about the state machine itself.
NO_POLICY = {"SYMBI_SECURITY__ENFORCE_POLICIES": "false"}
#: Recovery and reconciliation fast enough for a test.
FAST = {
    "SYMBI_LIFECYCLE__RECONCILE_INTERVAL_S": "0.2",
    "SYMBI_LIFECYCLE__STALE_AFTER_S": "1",
    "SYMBI_LIFECYCLE__RESTART_BACKOFF_S": "0.3",
}


class Client:
    """A lifecycle gRPC stub whose failures raise the server's SymbiError."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.stub = lifecycle_pb2_grpc.LifecycleServiceStub(channel)

    async def call(self, method: str, request: object, timeout: float = 20.0) -> object:
        try:
            return await getattr(self.stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

    async def create(self, text: str, *, kind: str = "dsl", **fields: str) -> lifecycle_pb2.Agent:
        request = lifecycle_pb2.CreateAgentRequest(**{kind: text}, **fields)
        return await self.call("CreateAgent", request)  # type: ignore[return-value]

    async def get(self, agent_id: str) -> lifecycle_pb2.Agent:
        return await self.call("GetAgent", lifecycle_pb2.GetAgentRequest(id=agent_id))  # type: ignore[return-value]

    async def state(self, agent_id: str) -> str:
        agent = await self.get(agent_id)
        return lifecycle_pb2.AgentState.Name(agent.state).removeprefix("AGENT_STATE_")


@pytest_asyncio.fixture
async def open_client() -> AsyncIterator[Callable[[ServiceProcess], Client]]:
    channels: list[grpc.aio.Channel] = []

    def make(process: ServiceProcess) -> Client:
        assert process.grpc_address is not None
        channel = open_channel(process.grpc_address)
        channels.append(channel)
        return Client(channel)

    yield make
    for channel in channels:
        await channel.close()


async def start_lifecycle(
    services: ServiceCluster, instance: str, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    return await services.start_serving("lifecycle", instance=instance, env=dict(env or {}))


@pytest_asyncio.fixture
async def open_node(
    services: ServiceCluster, nats_server: NatsServerProcess
) -> AsyncIterator[Callable[[], Awaitable[BusEndpoint]]]:
    """Opens a worker node's bus endpoint (to publish task statuses as a node does); call it
    once a service has provisioned the platform's streams and buckets."""
    opened: list[tuple[nats.aio.client.Client, asyncio.Task[None]]] = []

    async def open_() -> BusEndpoint:
        credentials = services.authority.issue(f"node-test{len(opened)}", "node")
        nc = await nats.connect(nats_server.url)
        endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials)
        opened.append((nc, asyncio.create_task(endpoint.run())))
        await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
        return endpoint

    yield open_
    for nc, loop in opened:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await nc.close()


async def wait_state(client: Client, agent_id: str, state: str, timeout: float = 20) -> None:
    async def check() -> bool:
        return await client.state(agent_id) == state

    await eventually(check, timeout=timeout)


@pytest.fixture
def examples() -> list[Path]:
    return sorted(EXAMPLES.iterdir())
