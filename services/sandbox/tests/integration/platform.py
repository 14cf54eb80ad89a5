"""The rest of the platform, as far as the sandbox service sees it, for its process tests.

:class:`SchedulerStandIn` is a service principal on a real NATS: it provisions the platform's
streams, manages the platform topic's group key (as every service does), sends task orders
and stops exactly as contract C3 says, and collects the task statuses and heartbeats nodes
publish. The sandbox itself runs as a real process (``services.start_serving("sandbox")``).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi_common.bus import BusEndpoint, Received, TopicMembership
from symbi_common.launcher import ServiceProcess
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

State = events_pb2.TaskStatus.State

#: Agents' public topic (managed by services, as the platform does).
AGENTS_PUBLIC = TopicMembership("agents.public", roles=frozenset({"agent", "service"}))


class SchedulerStandIn:
    def __init__(self, endpoint: BusEndpoint) -> None:
        self.endpoint = endpoint
        self.bus = endpoint.bus
        self.statuses: dict[str, list[events_pb2.TaskStatus]] = defaultdict(list)
        self.heartbeats: dict[str, events_pb2.NodeHeartbeat] = {}
        self.status_senders: set[str] = set()
        self.ordered: list[events_pb2.TaskStatus] = []  # in stream order
        self.audit: list[dict[str, Any]] = []  # audit events, verified and parsed
        self._counter = 0

    async def on_status(self, message: Received) -> None:
        status = message.parse(events_pb2.TaskStatus)
        self.status_senders.add(message.sender)
        self.statuses[status.task_id].append(status)
        self.ordered.append(status)

    async def on_audit(self, message: Received) -> None:
        event = message.parse(events_pb2.AuditEvent)
        self.audit.append(
            {
                "event_type": event.event_type,
                "agent_id": event.agent_id,
                "actor": event.actor,
                "sender": message.sender,
                "details": json.loads(event.details_json or "{}"),
            }
        )

    async def on_heartbeat(self, message: Received) -> None:
        beat = message.parse(events_pb2.NodeHeartbeat)
        if message.sender == beat.node_id:  # a node speaks for itself only
            self.heartbeats[beat.node_id] = beat

    async def assign(
        self,
        node_id: str,
        task_id: str,
        *,
        image: str = "symbi/busybox",
        command: tuple[str, ...] = ("true",),
        tier: int = common_pb2.SANDBOX_TIER_DOCKER,
        timeout_s: float = 60.0,
        memory_mb: int = 0,
        agent_id: str = "agent-test",
        env: dict[str, str] | None = None,
        code: bytes = b"",
        preempts: tuple[str, ...] = (),
        not_after_s: float = 60.0,
        dispatch_id: str | None = None,
        network: bool = False,
    ) -> events_pb2.TaskAssignment:
        self._counter += 1
        now = int(time.time() * 1000)
        order = events_pb2.TaskAssignment(
            task_id=task_id,
            agent_id=agent_id,
            attempt=1,
            tier=tier,
            limits=common_pb2.ResourceLimits(
                memory_mb=memory_mb,
                execution_timeout=duration_pb2.Duration(seconds=int(timeout_s)),
            ),
            image=image,
            command=list(command),
            env=env or {},
            code=code,
            network=network,
            dispatched_at_ms=now,
            dispatch_id=dispatch_id or f"{task_id}-{self._counter}",
            not_after_ms=now + int(not_after_s * 1000),
            preempts=list(preempts),
            node_id=node_id,
        )
        await self.bus.send(node_id, order, subject=f"symbi.task.{node_id}")
        return order

    async def stop(
        self, node_id: str, task_id: str, *, reason: str, grace_ms: int = 0, dispatch_id: str = ""
    ) -> None:
        stop = events_pb2.TaskStop(
            task_id=task_id, reason=reason, grace_ms=grace_ms, dispatch_id=dispatch_id
        )
        await self.bus.send(node_id, stop, subject=f"symbi.task.control.{node_id}")

    def states(self, task_id: str) -> list[str]:
        return [State.Name(s.state).removeprefix("STATE_") for s in self.statuses[task_id]]

    async def final(self, task_id: str, timeout: float = 60.0) -> events_pb2.TaskStatus:
        """The task's final status (waits for it)."""

        def check() -> events_pb2.TaskStatus:
            finals = [s for s in self.statuses[task_id] if s.state != State.STATE_STARTED]
            assert finals, f"{task_id}: only {self.states(task_id)} so far"
            return finals[-1]

        return await eventually(check, timeout=timeout)

    async def started(self, task_id: str, timeout: float = 60.0) -> events_pb2.TaskStatus:
        def check() -> events_pb2.TaskStatus:
            found = [s for s in self.statuses[task_id] if s.state == State.STATE_STARTED]
            assert found, f"{task_id}: {self.states(task_id)} so far"
            return found[0]

        return await eventually(check, timeout=timeout)


def node_env(work_root: Path, **extra: str) -> dict[str, str]:
    env = {
        "SYMBI_SANDBOX__WORK_ROOT": str(work_root),
        "SYMBI_SANDBOX__HEARTBEAT_INTERVAL_S": "0.5",
        "SYMBI_SANDBOX__STOP_GRACE_S": "1",
        "SYMBI_SANDBOX__PREEMPT_GRACE_S": "1",
        "SYMBI_SANDBOX__EGRESS_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "SYMBI_LOG_LEVEL": "debug",
    }
    env.update(extra)
    return env


async def start_node(
    services: ServiceCluster, work_root: Path, instance: str, **extra: str
) -> ServiceProcess:
    return await services.start_serving(
        "sandbox", instance=instance, env=node_env(work_root, **extra)
    )
