"""The scheduler's API on the active process: protobuf requests in, protobuf answers out.

The gRPC servicer calls it directly on the leader; a standby's servicer forwards the same
requests over the bus to the leader, whose ``forward`` responder calls it. Thin by design:
validation lives in ``convert`` and the domain types, decisions in the core.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from symbi.scheduler.v1 import scheduler_pb2
from symbi_common.errors import InvalidArgument

from .convert import STATE_FROM_PROTO, RequestDefaults, spec_from_request, task_to_proto
from .core import SchedulerCore
from .task import TaskState, check_id

__all__ = ["SchedulerApi"]

_LIST_DEFAULT = 100
_LIST_MAX = 10_000


def new_task_id() -> str:
    return f"task-{uuid.uuid4().hex[:20]}"


class SchedulerApi:
    """Requests against the local core (which must be the active one)."""

    def __init__(
        self, core: SchedulerCore, wake: Callable[[], None], defaults: RequestDefaults
    ) -> None:
        self._core = core
        self._wake = wake
        self._defaults = defaults

    async def schedule_agent(
        self, request: scheduler_pb2.ScheduleAgentRequest
    ) -> scheduler_pb2.ScheduleAgentResponse:
        task_id = request.task_id or new_task_id()
        spec = spec_from_request(request, self._defaults, task_id)
        rec = await self._core.submit(spec)
        self._wake()
        return scheduler_pb2.ScheduleAgentResponse(task=task_to_proto(rec))

    async def cancel(self, request: scheduler_pb2.CancelRequest) -> scheduler_pb2.CancelResponse:
        check_id("task_id", request.task_id)
        rec = await self._core.cancel(request.task_id, request.reason or "cancelled")
        self._wake()
        return scheduler_pb2.CancelResponse(task=task_to_proto(rec))

    async def get_task(self, request: scheduler_pb2.GetTaskRequest) -> scheduler_pb2.Task:
        check_id("task_id", request.task_id)
        self._core.require_active()
        return task_to_proto(self._core.task(request.task_id))

    async def list_tasks(
        self, request: scheduler_pb2.ListTasksRequest
    ) -> scheduler_pb2.ListTasksResponse:
        self._core.require_active()
        limit = request.limit or _LIST_DEFAULT
        if limit > _LIST_MAX:
            raise InvalidArgument(
                f"limit {limit} exceeds {_LIST_MAX}",
                reason="LIMIT_TOO_LARGE",
                details={"field": "limit"},
            )
        state: TaskState | None = None
        if request.state:
            state = STATE_FROM_PROTO.get(request.state)
            if state is None or state.terminal:
                raise InvalidArgument(
                    f"state {request.state} is not a live task state (queued, dispatched, "
                    "running, preempted)",
                    reason="BAD_STATE_FILTER",
                    details={"field": "state"},
                )
        if state is TaskState.QUEUED:
            total = self._core.status().queued_total
            records = self._core.queued(limit)
        else:
            matched = self._core.tasks(state)
            total, records = len(matched), matched[:limit]
        return scheduler_pb2.ListTasksResponse(
            tasks=[task_to_proto(r) for r in records], total=total
        )

    async def remove_node(
        self, request: scheduler_pb2.RemoveNodeRequest
    ) -> scheduler_pb2.RemoveNodeResponse:
        check_id("node_id", request.node_id)
        report = await self._core.remove_node(request.node_id)
        self._wake()
        return scheduler_pb2.RemoveNodeResponse(requeued=report.requeued, failed=report.failed)
