"""Fixtures of the audit service tests: the service as a real process on a real NATS, a
publisher principal on the secure bus, and a gRPC stub."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import grpc
import nats
import pytest_asyncio
from nats.js.errors import KeyNotFoundError

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi_audit.event import AuditEvent, sign_event
from symbi_common.auditing import to_proto
from symbi_common.bus import BusEndpoint, SecureBus
from symbi_common.bus.directory import topic_token
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import NatsSection
from symbi_common.grpc import open_channel
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.launcher import ServiceProcess
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

PUBLISHER = "svc-audit-tester"

#: Small checkpoint intervals and a short ack wait keep the tests quick.
SERVICE_ENV = {
    "SYMBI_AUDIT__CHECKPOINT_EVERY_ENTRIES": "100",
    "SYMBI_AUDIT__CHECKPOINT_EVERY_SECONDS": "0.5",
    "SYMBI_AUDIT__ACK_WAIT_S": "2",
}


@dataclass
class Publisher:
    """A service principal that publishes audit events over the secure bus."""

    endpoint: BusEndpoint

    @property
    def bus(self) -> SecureBus:
        return self.endpoint.bus

    def sign(self, event: AuditEvent) -> AuditEvent:
        keys = self.bus.keys
        return sign_event(event, keys.key_id, keys.signing_key)

    async def publish(self, event: AuditEvent) -> None:
        """Publish ``event`` as it is (signed or not) on ``symbi.audit.<type>``."""
        await self.bus.audit(to_proto(event))

    async def reaches(self, principal: str) -> None:
        """Wait until the platform topic's current key is sealed to ``principal`` too (events
        published before that could not be read by it)."""
        directory = self.endpoint.directory

        async def ready() -> bool:
            try:
                entry = await directory.groups_kv.get(f"meta.{topic_token('platform')}")
            except KeyNotFoundError:
                return False
            state = json.loads(entry.value or b"{}")
            latest = self.bus.groups.latest("platform")
            return (
                principal in state.get("members", {})
                and latest is not None
                and latest[0] == state["generation"]
            )

        await eventually(ready, timeout=20, message=f"platform key sealed to {principal}")


@dataclass
class AuditProcess:
    """The audit service process with a stub on its gRPC address."""

    process: ServiceProcess
    channel: grpc.aio.Channel
    stub: audit_pb2_grpc.AuditServiceStub

    @property
    def principal(self) -> str:
        return "svc-audit-a"

    async def size(self) -> int:
        status = await self.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
        return status.size


StartAudit = Callable[..., Awaitable[AuditProcess]]


@pytest_asyncio.fixture
async def start_audit(services: ServiceCluster) -> AsyncIterator[StartAudit]:
    """``await start_audit(env=...)``: start (or restart) audit instance "a" and wait for
    SERVING."""
    opened: list[AuditProcess] = []

    async def start(env: Mapping[str, str] | None = None) -> AuditProcess:
        process = await services.start_serving(
            "audit", instance="a", env={**SERVICE_ENV, **(env or {})}
        )
        assert process.grpc_address is not None
        channel = open_channel(process.grpc_address)
        audit = AuditProcess(process, channel, audit_pb2_grpc.AuditServiceStub(channel))
        opened.append(audit)
        return audit

    try:
        yield start
    finally:
        for audit in opened:
            await audit.channel.close()


@pytest_asyncio.fixture
async def publisher(
    services: ServiceCluster, nats_server: NatsServerProcess
) -> AsyncIterator[Publisher]:
    credentials = services.authority.issue(PUBLISHER, "service")
    nc = await nats.connect(nats_server.url, inbox_prefix=inbox_prefix(PUBLISHER))
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    endpoint = await BusEndpoint.open(nc, js, credentials)
    runner = asyncio.create_task(endpoint.run())
    try:
        yield Publisher(endpoint)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await nc.close()
