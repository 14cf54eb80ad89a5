"""The gRPC servicer: each call answered here on the leader, forwarded to it on a standby.

``GetSystemStatus`` and ``ListNodes`` answer from this process (standbys follow the nodes
too); ``WatchQueue`` streams only from the leader.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_common.errors import Unavailable

from .api import SchedulerApi
from .convert import node_to_proto, status_to_proto
from .core import SchedulerCore
from .forward import LeaderLink
from .lease import LeaderElection
from .metrics import DecisionLatency
from .watch import WatchHub

__all__ = ["Components", "SchedulerServicer"]

M = TypeVar("M", bound=Message)


class Components(Protocol):
    """What the servicer needs from the running service."""

    @property
    def core(self) -> SchedulerCore: ...
    @property
    def api(self) -> SchedulerApi: ...
    @property
    def link(self) -> LeaderLink: ...
    @property
    def election(self) -> LeaderElection: ...
    @property
    def hub(self) -> WatchHub: ...
    @property
    def latency(self) -> DecisionLatency: ...
    @property
    def instance_id(self) -> str: ...
    @property
    def strategy(self) -> str: ...


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    """``components()`` returns the started service's parts (Unavailable until started)."""

    def __init__(self, components: Callable[[], Components]) -> None:
        self._components = components

    async def _route(self, method: str, request: Message, response: type[M]) -> M:
        c = self._components()
        if c.core.active:
            answer = await getattr(c.api, method)(request)
            assert isinstance(answer, response)
            return answer
        return await c.link.call(method, request, response)

    async def ScheduleAgent(
        self, request: scheduler_pb2.ScheduleAgentRequest, context: Any
    ) -> scheduler_pb2.ScheduleAgentResponse:
        return await self._route("schedule_agent", request, scheduler_pb2.ScheduleAgentResponse)

    async def Cancel(
        self, request: scheduler_pb2.CancelRequest, context: Any
    ) -> scheduler_pb2.CancelResponse:
        return await self._route("cancel", request, scheduler_pb2.CancelResponse)

    async def GetTask(
        self, request: scheduler_pb2.GetTaskRequest, context: Any
    ) -> scheduler_pb2.Task:
        return await self._route("get_task", request, scheduler_pb2.Task)

    async def ListTasks(
        self, request: scheduler_pb2.ListTasksRequest, context: Any
    ) -> scheduler_pb2.ListTasksResponse:
        return await self._route("list_tasks", request, scheduler_pb2.ListTasksResponse)

    async def RemoveNode(
        self, request: scheduler_pb2.RemoveNodeRequest, context: Any
    ) -> scheduler_pb2.RemoveNodeResponse:
        return await self._route("remove_node", request, scheduler_pb2.RemoveNodeResponse)

    async def GetSystemStatus(
        self, request: scheduler_pb2.GetSystemStatusRequest, context: Any
    ) -> scheduler_pb2.SystemStatus:
        c = self._components()
        p50, p99 = c.latency.percentiles() if c.core.active else (0.0, 0.0)
        return status_to_proto(
            c.core.status(),
            leader_id=c.election.known_holder or "",
            instance_id=c.instance_id,
            term=c.election.term,
            decision_p50_s=p50,
            decision_p99_s=p99,
            strategy=c.strategy,
        )

    async def ListNodes(
        self, request: scheduler_pb2.ListNodesRequest, context: Any
    ) -> scheduler_pb2.ListNodesResponse:
        c = self._components()
        return scheduler_pb2.ListNodesResponse(nodes=[node_to_proto(v) for v in c.core.nodes()])

    async def WatchQueue(
        self, request: scheduler_pb2.WatchQueueRequest, context: Any
    ) -> AsyncIterator[scheduler_pb2.QueueEvent]:
        c = self._components()
        if not c.core.active:
            leader = c.election.known_holder or "unknown (a failover may be in progress)"
            raise Unavailable(
                f"this scheduler is a standby; watch the leader, {leader}",
                reason="SCHEDULER_NOT_ACTIVE",
            )
        snapshot = c.core.tasks() if request.snapshot else ()
        async for event in c.hub.watch(request.agent_id, snapshot):
            yield event
