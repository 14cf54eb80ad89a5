"""The gRPC API of the lifecycle service: proto in, domain call, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi_common.dsl import SourceFormat
from symbi_common.errors import InvalidArgument, Unavailable
from symbi_lifecycle.convert import (
    agent_to_proto,
    source_of,
    state_from_proto,
    transition_to_proto,
)
from symbi_lifecycle.index import AgentFilter, AgentIndex
from symbi_lifecycle.lifecycle import AgentLifecycle
from symbi_lifecycle.record import StoredAgent
from symbi_lifecycle.states import AgentState

__all__ = ["LifecycleParts", "LifecycleServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

_FORMATS: dict[str, SourceFormat] = {"dsl": "dsl", "toml": "toml", "yaml": "yaml"}


@dataclass(frozen=True)
class LifecycleParts:
    lifecycle: AgentLifecycle
    index: AgentIndex
    page_size: int = 100
    page_max: int = 1000


def _actor(context: Context) -> str:
    peer = context.peer() or "unknown"
    return f"grpc:{peer}"


def _require_id(agent_id: str) -> str:
    if not agent_id:
        raise InvalidArgument("id is required", reason="MISSING_ID", details={"field": "id"})
    return agent_id


class LifecycleServicer(lifecycle_pb2_grpc.LifecycleServiceServicer):
    """Answers UNAVAILABLE until the process has started and attached its parts."""

    def __init__(self) -> None:
        self._parts: LifecycleParts | None = None

    def attach(self, parts: LifecycleParts) -> None:
        self._parts = parts

    @property
    def parts(self) -> LifecycleParts:
        if self._parts is None:
            raise Unavailable("the lifecycle service is starting", reason="STARTING")
        return self._parts

    async def CreateAgent(
        self, request: lifecycle_pb2.CreateAgentRequest, context: Context
    ) -> lifecycle_pb2.Agent:
        kind = request.WhichOneof("definition")
        if kind is None:
            raise InvalidArgument(
                "a definition is required: set one of dsl, toml, yaml",
                reason="MISSING_DEFINITION",
                details={"field": "definition"},
            )
        stored = await self.parts.lifecycle.create(
            getattr(request, kind),
            source_format=_FORMATS[kind],
            file=request.file_name,
            agent_id=request.agent_id,
            owner=request.owner,
            name=request.name or None,
            actor=_actor(context),
        )
        return agent_to_proto(stored)

    async def GetAgent(
        self, request: lifecycle_pb2.GetAgentRequest, context: Context
    ) -> lifecycle_pb2.Agent:
        lifecycle = self.parts.lifecycle
        stored = await lifecycle.get(_require_id(request.id))
        definition = await lifecycle.definition(request.id)
        return agent_to_proto(
            stored,
            source=source_of(definition),
            definition_json=definition if request.include_definition else "",
        )

    async def ListAgents(
        self, request: lifecycle_pb2.ListAgentsRequest, context: Context
    ) -> lifecycle_pb2.ListAgentsResponse:
        parts = self.parts
        size = request.page.page_size or parts.page_size
        page = parts.index.page(
            AgentFilter(
                state=state_from_proto(request.state),
                name_prefix=request.name_prefix,
                owner=request.owner,
            ),
            min(size, parts.page_max),
            request.page.page_token,
        )
        response = lifecycle_pb2.ListAgentsResponse(
            agents=[agent_to_proto(s) for s in page.agents], total=page.total
        )
        response.page.next_page_token = page.next_token
        return response

    async def Suspend(
        self, request: lifecycle_pb2.TransitionRequest, context: Context
    ) -> lifecycle_pb2.Agent:
        stored = await self.parts.lifecycle.suspend(
            _require_id(request.id),
            reason=request.reason,
            actor=_actor(context),
            expected_revision=request.expected_revision,
        )
        return agent_to_proto(stored)

    async def Resume(
        self, request: lifecycle_pb2.TransitionRequest, context: Context
    ) -> lifecycle_pb2.Agent:
        stored = await self.parts.lifecycle.resume(
            _require_id(request.id),
            reason=request.reason,
            actor=_actor(context),
            expected_revision=request.expected_revision,
        )
        return agent_to_proto(stored)

    async def Terminate(
        self, request: lifecycle_pb2.TransitionRequest, context: Context
    ) -> lifecycle_pb2.Agent:
        stored = await self.parts.lifecycle.terminate(
            _require_id(request.id),
            reason=request.reason,
            actor=_actor(context),
            expected_revision=request.expected_revision,
        )
        return agent_to_proto(stored)

    async def WatchAgent(
        self, request: lifecycle_pb2.WatchAgentRequest, context: Context
    ) -> AsyncIterator[lifecycle_pb2.Transition]:
        parts = self.parts
        if request.include_current and not request.id:
            raise InvalidArgument(
                "include_current needs an agent id", reason="MISSING_ID", details={"field": "id"}
            )
        watcher = parts.index.watch(request.id)
        try:
            seen = 0
            if request.id:
                current = await parts.lifecycle.get(request.id)  # NotFound for an unknown agent
                seen = current.record.seq
                if request.include_current:
                    yield _transition(current)
                if current.record.state is AgentState.TERMINATED:
                    return
            while True:
                stored = await watcher.next()
                if request.id and stored.record.seq <= seen:
                    continue  # already sent as the current state
                yield _transition(stored)
                if request.id and stored.record.state is AgentState.TERMINATED:
                    return
        finally:
            parts.index.unwatch(watcher)

    async def GetHistory(
        self, request: lifecycle_pb2.GetHistoryRequest, context: Context
    ) -> lifecycle_pb2.GetHistoryResponse:
        agent_id = _require_id(request.id)
        entries, truncated = await self.parts.lifecycle.history(agent_id)
        return lifecycle_pb2.GetHistoryResponse(
            transitions=[transition_to_proto(agent_id, e.transition, e.revision) for e in entries],
            truncated=truncated,
        )


def _transition(stored: StoredAgent) -> lifecycle_pb2.Transition:
    return transition_to_proto(stored.record.id, stored.record.last, stored.revision)
