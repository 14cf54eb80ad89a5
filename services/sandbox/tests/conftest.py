"""Fakes of the channel's ports (no I/O), shared by unit and integration tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from symbi_common.errors import PermissionDenied
from symbi_sandbox.channel import (
    AgentContext,
    AgentMessage,
    AuditRecord,
    EgressDecision,
    MemoryItem,
)


class FakeSubscription:
    def __init__(self, queue: asyncio.Queue[AgentMessage]) -> None:
        self._queue = queue
        self.closed = False

    def __aiter__(self) -> FakeSubscription:
        return self

    async def __anext__(self) -> AgentMessage:
        if self.closed:
            raise StopAsyncIteration
        return await self._queue.get()

    async def aclose(self) -> None:
        self.closed = True


class FakeBackend:
    """Records every call; refuses anything named ``forbidden*`` like a policy would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, AgentContext, tuple[Any, ...]]] = []
        self.inbox: asyncio.Queue[AgentMessage] = asyncio.Queue()
        self.topics: dict[str, asyncio.Queue[AgentMessage]] = {}
        self.memories: list[MemoryItem] = []
        self._ids = itertools.count(1)

    def _check(self, op: str, ctx: AgentContext, target: str, *args: Any) -> None:
        self.calls.append((op, ctx, (target, *args)))
        if target.startswith("forbidden"):
            raise PermissionDenied(
                f"policy denies {op} on {target} for agent {ctx.agent_id}",
                reason="POLICY_DENY",
            )

    def deliver(self, sender: str, payload: Any) -> None:
        self.inbox.put_nowait(AgentMessage(f"m{next(self._ids)}", sender, payload))

    async def send(self, ctx: AgentContext, recipient: str, payload: Any) -> str:
        self._check("send", ctx, recipient, payload)
        return f"m{next(self._ids)}"

    async def receive(self, ctx: AgentContext, timeout_s: float) -> AgentMessage | None:
        self.calls.append(("receive", ctx, (timeout_s,)))
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout_s)
        except TimeoutError:
            return None

    async def publish(self, ctx: AgentContext, topic: str, payload: Any) -> str:
        self._check("publish", ctx, topic, payload)
        message = AgentMessage(f"m{next(self._ids)}", ctx.agent_id, payload, topic=topic)
        self.topics.setdefault(topic, asyncio.Queue()).put_nowait(message)
        return message.message_id

    async def subscribe(self, ctx: AgentContext, topic: str) -> FakeSubscription:
        self._check("subscribe", ctx, topic)
        return FakeSubscription(self.topics.setdefault(topic, asyncio.Queue()))

    async def request(self, ctx: AgentContext, target: str, payload: Any, timeout_s: float) -> Any:
        self._check("request", ctx, target, payload)
        if target == "slow":
            await asyncio.sleep(timeout_s + 60)
        return {"echo": payload, "from": target}

    async def call_tool(self, ctx: AgentContext, tool: str, arguments: Mapping[str, Any]) -> Any:
        self._check("tool.call", ctx, tool, dict(arguments))
        return {"tool": tool, "arguments": dict(arguments)}

    async def store_memory(
        self,
        ctx: AgentContext,
        content: str,
        *,
        kind: str,
        metadata: Mapping[str, Any],
        tags: list[str] | None = None,
    ) -> str:
        self._check("memory.store", ctx, kind, content, tags or [])
        item = MemoryItem(f"mem{len(self.memories) + 1}", content, 1.0, kind, dict(metadata))
        self.memories.append(item)
        return item.memory_id

    async def query_memory(
        self, ctx: AgentContext, query: str, *, kind: str | None, limit: int
    ) -> list[MemoryItem]:
        self._check("memory.query", ctx, kind or "any", query)
        words = set(query.lower().split())
        return [m for m in self.memories if words & set(m.content.lower().split())][:limit]

    def ops(self) -> list[str]:
        return [op for op, _, _ in self.calls]


class FakeEgressPolicy:
    """Allows exactly the listed (host, port) pairs."""

    def __init__(self, allowed: set[tuple[str, int]] | None = None) -> None:
        self.allowed = allowed or set()
        self.asked: list[tuple[str, int]] = []

    async def check_egress(self, ctx: AgentContext, host: str, port: int) -> EgressDecision:
        self.asked.append((host, port))
        if (host, port) in self.allowed:
            return EgressDecision(True, "test allow-list")
        return EgressDecision(False, f"{host}:{port} is not on the agent's allow-list")


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def record(self, record: AuditRecord) -> None:
        self.records.append(record)

    def of(self, event_type: str) -> list[AuditRecord]:
        return [r for r in self.records if r.event_type == event_type]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def egress_policy() -> FakeEgressPolicy:
    return FakeEgressPolicy()


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()
