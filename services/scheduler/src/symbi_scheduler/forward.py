"""Standby → leader: API requests over request/reply on ``symbi.rpc.scheduler.<method>``.

Only the leader serves these subjects (it subscribes on becoming leader and stops when it
loses the lease), so a request reaches the active scheduler wherever a client connected.
With no leader (a failover in progress) the request fails at once with UNAVAILABLE
(``NO_RESPONDERS``), which clients retry. Only services may call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from symbi.scheduler.v1 import scheduler_pb2
from symbi_common.bus import Received, SecureBus
from symbi_common.errors import NotFound, PermissionDenied

from .api import SchedulerApi
from .nats_errors import nats_call

__all__ = ["FORWARD_SUBJECTS", "LeaderLink"]

M = TypeVar("M", bound=Message)
_PREFIX = "symbi.rpc.scheduler"
FORWARD_SUBJECTS = f"{_PREFIX}.*"

_Method = tuple[type[Message], Callable[[SchedulerApi], Callable[[Any], Awaitable[Message]]]]
_METHODS: dict[str, _Method] = {
    "schedule_agent": (scheduler_pb2.ScheduleAgentRequest, lambda a: a.schedule_agent),
    "cancel": (scheduler_pb2.CancelRequest, lambda a: a.cancel),
    "get_task": (scheduler_pb2.GetTaskRequest, lambda a: a.get_task),
    "list_tasks": (scheduler_pb2.ListTasksRequest, lambda a: a.list_tasks),
    "remove_node": (scheduler_pb2.RemoveNodeRequest, lambda a: a.remove_node),
}


class LeaderLink:
    """Forwards requests to the leader, and (on the leader) answers them."""

    def __init__(self, bus: SecureBus, api: SchedulerApi, *, timeout_s: float) -> None:
        self._bus = bus
        self._api = api
        self._timeout = timeout_s

    async def call(self, method: str, request: Message, response: type[M]) -> M:
        """``method`` on the leader; its answer, or its error re-raised here."""
        async with nats_call(f"forward {method} to the leader"):
            reply = await self._bus.request(
                f"{_PREFIX}.{method}", request, topic="platform", timeout=self._timeout
            )
        return reply.parse(response)

    async def serve(self) -> None:
        """Answer forwarded requests until cancelled (run while leading)."""
        await self._bus.serve(FORWARD_SUBJECTS, self._answer, queue="scheduler")

    async def _answer(self, msg: Received) -> Message:
        if msg.sender_role != "service":
            raise PermissionDenied(
                f"{msg.sender} ({msg.sender_role}) may not call the scheduler over the bus",
                reason="SERVICES_ONLY",
            )
        method = msg.subject.rsplit(".", 1)[-1]
        entry = _METHODS.get(method)
        if entry is None:
            raise NotFound(f"the scheduler has no method {method!r}", reason="NO_SUCH_METHOD")
        request_cls, handler = entry
        return await handler(self._api)(msg.parse(request_cls))
