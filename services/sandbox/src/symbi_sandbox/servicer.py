"""The gRPC API of the node (thin: proto → runner → proto).

``Run`` is direct use (an operator, the CLI): it starts the task, streams ``started``, the
task's output as it comes, then ``finished``; a caller that goes away before the task ends
stops it. ``Kill`` of a task the scheduler dispatched reports it ``STOPPED``/``cancelled`` on
the bus like a stop order would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc

from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_sandbox import convert
from symbi_sandbox.runner import SandboxRunner
from symbi_sandbox.tiers import Tier

__all__ = ["SandboxServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class NodeHandle(Protocol):
    """What the servicer needs from the running service."""

    @property
    def node_id(self) -> str: ...

    @property
    def max_concurrent_tasks(self) -> int: ...

    def require_runner(self) -> SandboxRunner: ...

    def kill_requested(self, task_id: str, grace_s: float) -> str:
        """Records an operator's kill (for dispatched tasks); returns the stop reason."""
        ...


class SandboxServicer(sandbox_pb2_grpc.SandboxServiceServicer):
    def __init__(self, node: NodeHandle, *, default_grace_s: float) -> None:
        self._node = node
        self._default_grace_s = default_grace_s

    async def Run(
        self, request: sandbox_pb2.RunRequest, context: Context
    ) -> AsyncIterator[sandbox_pb2.RunEvent]:
        runner = self._node.require_runner()
        task_id = request.task_id or f"run-{uuid.uuid4().hex[:16]}"
        execution = await runner.start(convert.task_from_run_request(request, task_id))
        try:
            yield sandbox_pb2.RunEvent(
                started=convert.execution_to_proto(execution, runner.node_id)
            )
            async for chunk in execution.logs():
                yield sandbox_pb2.RunEvent(log=convert.log_chunk_to_proto(chunk))
            await execution.wait()
            yield sandbox_pb2.RunEvent(
                finished=convert.execution_to_proto(execution, runner.node_id)
            )
        finally:
            if not execution.state.terminal:
                # The caller went away (or was cancelled): the task has no owner left.
                runner.request_stop(
                    task_id, grace_s=0, reason="cancelled: its Run call ended before the task"
                )

    async def Get(self, request: sandbox_pb2.GetRequest, context: Context) -> sandbox_pb2.Execution:
        runner = self._node.require_runner()
        return convert.execution_to_proto(runner.get(request.task_id), runner.node_id)

    async def Kill(
        self, request: sandbox_pb2.KillRequest, context: Context
    ) -> sandbox_pb2.Execution:
        runner = self._node.require_runner()
        execution = runner.get(request.task_id)
        if not execution.state.terminal:
            grace = request.grace_ms / 1000 if request.grace_ms else self._default_grace_s
            reason = self._node.kill_requested(request.task_id, grace)
            runner.request_stop(request.task_id, grace_s=grace, reason=reason)
            await execution.wait()
        return convert.execution_to_proto(execution, runner.node_id)

    async def Logs(
        self, request: sandbox_pb2.LogsRequest, context: Context
    ) -> AsyncIterator[sandbox_pb2.LogChunk]:
        execution = self._node.require_runner().get(request.task_id)
        if request.follow:
            async for chunk in execution.logs():
                yield convert.log_chunk_to_proto(chunk)
        else:
            for chunk in execution.output.snapshot():
                yield convert.log_chunk_to_proto(chunk)

    async def NodeInfo(
        self, request: sandbox_pb2.NodeInfoRequest, context: Context
    ) -> sandbox_pb2.NodeInfoResponse:
        runner = self._node.require_runner()
        info = await runner.node_info()
        broken: dict[Tier, str] = dict(runner.broken_tiers)
        return convert.node_info_to_proto(
            info,
            instance_id=runner.instance_id,
            broken_tiers=broken,
            max_concurrent_tasks=self._node.max_concurrent_tasks,
        )
