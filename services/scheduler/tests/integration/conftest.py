"""Fixtures of the scheduler's process-level tests.

- ``cluster``: the test's platform — scheduler processes (``python -m symbi_scheduler``) on
  the test NATS server, simulated worker nodes (``nodesim``), and a stand-in for the policy
  service that answers ``symbi.rpc.policy.evaluate`` with real Cedar (cedarpy against
  Symbi's schema) over the secure bus. The policy service itself is another issue's process;
  the stand-in speaks its contract (C1) so these tests do not depend on its progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import cedarpy
import grpc
import nats
import nats.errors
import pytest_asyncio
from google.protobuf import json_format
from nats.js import api as js_api

from symbi.bus.v1 import events_pb2
from symbi.policy.v1 import policy_pb2
from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_common.bus import BusEndpoint, Received
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.cedar import schema_text
from symbi_common.config import NatsSection
from symbi_common.errors import SymbiError
from symbi_common.grpc import error_from_rpc, open_channel
from symbi_common.jetstream import Provisioner
from symbi_common.launcher import ServiceProcess
from symbi_common.policy_client import EVALUATE_SUBJECT
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .nodesim import RunJournal, SimulatedNode

HEARTBEAT_S = 0.25
#: How often tests poll the scheduler: fast polling (the default 20 ms, several calls each)
#: keeps a scheduler on a busy 2-core machine so occupied that heartbeats go stale.
POLL_S = 0.2
#: Fast timers so losses, retries and failovers happen within seconds.
SCHEDULER_ENV = {
    "SYMBI_SCHEDULER__HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S),
    "SYMBI_SCHEDULER__MISSED_HEARTBEATS": "8",
    "SYMBI_SCHEDULER__ACK_TIMEOUT_S": "4",
    "SYMBI_SCHEDULER__LEASE_TTL_S": "2",
    "SYMBI_SCHEDULER__LEASE_RENEW_INTERVAL_S": "0.5",
    "SYMBI_SCHEDULER__NODE_MAX_TASKS": "16",
    "SYMBI_SECURITY__DEFAULT_SANDBOX_TIER": "docker",
    "SYMBI_LOG_LEVEL": "info",
}

ALLOW_ALL = 'permit(principal, action == Symbi::Action::"allocate", resource);'


def _plain(value: Any) -> Any:
    """Struct values back to Cedar JSON: whole numbers are Longs."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _type(name: str) -> str:
    return name if "::" in name else f"Symbi::{name}"


class CedarPolicy:
    """Answers ``allocate`` questions with cedarpy; ``policies`` may be changed by the test."""

    def __init__(self, policies: str = ALLOW_ALL) -> None:
        self.policies = policies
        self.asked: list[policy_pb2.AuthorizationRequest] = []

    async def evaluate(self, msg: Received) -> policy_pb2.EvaluateResponse:
        request = msg.parse(policy_pb2.EvaluateRequest).request
        self.asked.append(request)
        principal = {"type": _type(request.principal.type), "id": request.principal.id}
        resource = {"type": _type(request.resource.type), "id": request.resource.id}
        entities = [
            {
                "uid": {"type": _type(e.uid.type), "id": e.uid.id},
                "attrs": _plain(json_format.MessageToDict(e.attrs)),
                "parents": [{"type": _type(p.type), "id": p.id} for p in e.parents],
            }
            for e in request.entities
        ]
        entities.append({"uid": principal, "attrs": {}, "parents": []})
        result = cedarpy.is_authorized(
            {
                "principal": f'{principal["type"]}::"{principal["id"]}"',
                "action": f'Symbi::Action::"{request.action}"',
                "resource": f'{resource["type"]}::"{resource["id"]}"',
                "context": _plain(json_format.MessageToDict(request.context)),
            },
            self.policies,
            entities,
            schema=schema_text(),
        )
        errors = [str(e) for e in result.diagnostics.errors]
        decision = policy_pb2.DECISION_ALLOW if result.allowed else policy_pb2.DECISION_DENY
        reasons = [] if result.allowed else (errors or ["no policy permits allocate"])
        return policy_pb2.EvaluateResponse(
            result=policy_pb2.DecisionResult(decision=decision, reasons=reasons, version=1)
        )


@dataclass
class Scheduler:
    process: ServiceProcess
    channel: grpc.aio.Channel
    stub: scheduler_pb2_grpc.SchedulerServiceStub
    instance: str

    async def status(self) -> scheduler_pb2.SystemStatus:
        return await self.stub.GetSystemStatus(scheduler_pb2.GetSystemStatusRequest(), timeout=5)

    async def task(self, task_id: str) -> scheduler_pb2.Task:
        return await self.stub.GetTask(scheduler_pb2.GetTaskRequest(task_id=task_id), timeout=5)


@dataclass
class Cluster:
    services: ServiceCluster
    nats_url: str
    policy: CedarPolicy
    endpoint: BusEndpoint
    journal: RunJournal = field(default_factory=RunJournal)
    schedulers: list[Scheduler] = field(default_factory=list)
    nodes: dict[str, SimulatedNode] = field(default_factory=dict)

    async def start_scheduler(
        self, instance: str, env: Mapping[str, str] | None = None
    ) -> Scheduler:
        process = await self.services.start_serving(
            "scheduler", instance=instance, env={**SCHEDULER_ENV, **(env or {})}
        )
        assert process.grpc_address is not None
        channel = open_channel(process.grpc_address)
        scheduler = Scheduler(
            process, channel, scheduler_pb2_grpc.SchedulerServiceStub(channel), instance
        )
        self.schedulers.append(scheduler)
        return scheduler

    async def start_node(self, name: str, **options: Any) -> SimulatedNode:
        node_id = f"node-{name}"
        credentials = self.services.authority.issue(node_id, "node")
        options.setdefault("heartbeat_interval_s", HEARTBEAT_S)
        node = SimulatedNode(credentials, self.nats_url, journal=self.journal, **options)
        self.nodes[node_id] = node
        return await node.start()

    async def stop_node(self, node_id: str) -> None:
        """The node vanishes (no more heartbeats, statuses or acknowledgements)."""
        await self.nodes[node_id].stop()

    async def leader(self, timeout: float = 15) -> Scheduler:
        async def find() -> Scheduler | None:
            for s in self.schedulers:
                if s.process.returncode is not None:
                    continue
                try:
                    if (await s.status()).leader:
                        return s
                except grpc.aio.AioRpcError:
                    continue
            return None

        found = await eventually(find, timeout=timeout, message="a leading scheduler")
        assert found is not None
        return found

    async def wait_nodes(self, scheduler: Scheduler, count: int, timeout: float = 15) -> None:
        async def ready() -> bool:
            return (await scheduler.status()).nodes_ready >= count

        await eventually(ready, timeout=timeout, message=f"{count} nodes ready")

    async def statuses(self, task_id: str) -> list[tuple[str, events_pb2.TaskStatus]]:
        """Every TaskStatus published for ``task_id`` so far, with its sender, in order."""
        bus = self.endpoint.bus
        subject = f"symbi.task.status.{task_id}"
        sub = await bus.js.pull_subscribe(
            subject,
            stream="SYMBI_EVENTS",
            config=js_api.ConsumerConfig(
                ack_policy=js_api.AckPolicy.NONE, inactive_threshold=5.0, mem_storage=True
            ),
        )
        found: list[tuple[str, events_pb2.TaskStatus]] = []
        try:
            while True:
                try:
                    batch = await sub.fetch(100, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    return found
                for msg in batch:
                    opened = bus.opener.open(msg.data, subject=subject)
                    status = events_pb2.TaskStatus()
                    status.ParseFromString(opened.payload)
                    found.append((opened.envelope.sender, status))
                    if msg.metadata.num_pending == 0:
                        return found
        finally:
            await sub.unsubscribe()

    async def close(self) -> None:
        for node in self.nodes.values():
            await node.stop()
        for s in self.schedulers:
            await s.channel.close()


@contextlib.asynccontextmanager
async def open_cluster(
    services: ServiceCluster, *, policy_stand_in: bool
) -> AsyncIterator[Cluster]:
    """The test's platform; with ``policy_stand_in`` the Cedar stand-in answers allocate."""
    assert services.nats_url is not None
    credentials = services.authority.issue("svc-scheduler-tester", "service")
    nc = await nats.connect(
        services.nats_url, inbox_prefix=inbox_prefix("svc-scheduler-tester").encode()
    )
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    endpoint = await BusEndpoint.open(nc, js, credentials)
    policy = CedarPolicy()
    c = Cluster(services, services.nats_url, policy, endpoint)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(endpoint.run())]
    if policy_stand_in:
        tasks.append(
            loop.create_task(endpoint.bus.serve(EVALUATE_SUBJECT, policy.evaluate, queue="policy"))
        )
    try:
        yield c
    finally:
        await c.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()


@pytest_asyncio.fixture
async def cluster(services: ServiceCluster) -> AsyncIterator[Cluster]:
    """Scheduler processes, simulated nodes, and the Cedar stand-in for policy."""
    async with open_cluster(services, policy_stand_in=True) as c:
        yield c


@pytest_asyncio.fixture
async def bare_cluster(services: ServiceCluster) -> AsyncIterator[Cluster]:
    """The same without the stand-in: the test starts the real policy service."""
    async with open_cluster(services, policy_stand_in=False) as c:
        yield c


async def rpc_error(call: Any) -> SymbiError:
    """The SymbiError a gRPC call fails with (the test fails if it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return error_from_rpc(exc)
    raise AssertionError("the call succeeded")
