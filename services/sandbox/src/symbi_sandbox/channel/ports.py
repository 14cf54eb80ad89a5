"""What the agent channel needs from the platform: ports the wiring phase implements.

:class:`ChannelBackend` carries the agent's bus operations (messages, pub/sub, requests,
tool calls, memory) under the agent's own identity; its implementation checks policy and
writes an audit record for every call, and refuses a denied call by raising
:class:`symbi_common.errors.PermissionDenied` with the reason, which the agent receives.
Egress (the HTTP CONNECT proxy) is decided by :class:`EgressPolicy` and recorded through
:class:`AuditSink` by the channel server itself, because the connection is made here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

__all__ = [
    "AgentContext",
    "AgentMessage",
    "AuditRecord",
    "AuditSink",
    "ChannelBackend",
    "EgressDecision",
    "EgressPolicy",
    "JsonValue",
    "MemoryItem",
    "Subscription",
]

JsonValue = Any  # a value json.loads produces; kept loose on purpose (it crosses the wire)


@dataclass(frozen=True)
class AgentContext:
    """Who is calling: the task and agent a socket belongs to (the socket is the credential)."""

    task_id: str
    agent_id: str
    node_id: str
    attempt: int = 1
    network: bool = False


@dataclass(frozen=True)
class AgentMessage:
    """A message delivered to an agent (direct or from a subscribed topic)."""

    message_id: str
    sender: str
    payload: JsonValue
    topic: str | None = None
    timestamp_ms: int = 0

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "message_id": self.message_id,
            "sender": self.sender,
            "topic": self.topic,
            "payload": self.payload,
            "timestamp_ms": self.timestamp_ms,
        }


@dataclass(frozen=True)
class MemoryItem:
    """One memory record returned by a query."""

    memory_id: str
    content: str
    score: float = 0.0
    kind: str = "long_term"
    metadata: Mapping[str, JsonValue] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "memory_id": self.memory_id,
            "content": self.content,
            "score": self.score,
            "kind": self.kind,
            "metadata": dict(self.metadata),
        }


class Subscription(Protocol):
    """An open topic subscription: iterate for messages, ``aclose`` to end it."""

    def __aiter__(self) -> Subscription: ...

    async def __anext__(self) -> AgentMessage: ...

    async def aclose(self) -> None: ...


class ChannelBackend(Protocol):
    """The agent's operations, performed under its identity with policy and audit per call.

    Every method may raise :class:`~symbi_common.errors.SymbiError`; ``PermissionDenied``
    carries the policy's reason to the agent. The channel server bounds each call with a
    deadline and cancels it when the agent goes away.
    """

    async def send(self, ctx: AgentContext, recipient: str, payload: JsonValue) -> str:
        """Sends a direct message to another agent; returns the message id."""
        ...

    async def receive(self, ctx: AgentContext, timeout_s: float) -> AgentMessage | None:
        """The next direct message for the agent, or ``None`` after ``timeout_s``."""
        ...

    async def publish(self, ctx: AgentContext, topic: str, payload: JsonValue) -> str:
        """Publishes to a topic; returns the message id."""
        ...

    async def subscribe(self, ctx: AgentContext, topic: str) -> Subscription:
        """Opens a subscription (authorised now: a denial raises here, not later)."""
        ...

    async def request(
        self, ctx: AgentContext, target: str, payload: JsonValue, timeout_s: float
    ) -> JsonValue:
        """Request/reply with another agent or service; returns the reply payload."""
        ...

    async def call_tool(
        self, ctx: AgentContext, tool: str, arguments: Mapping[str, JsonValue]
    ) -> JsonValue:
        """Calls an MCP tool through the gateway; returns its result."""
        ...

    async def store_memory(
        self,
        ctx: AgentContext,
        content: str,
        *,
        kind: str,
        metadata: Mapping[str, JsonValue],
        tags: list[str] | None = None,
    ) -> str:
        """Stores a memory for the agent; returns its id.

        ``tags`` come from the agent: the implementation drops ``dsl-guard:`` tags, which only
        the DSL runtime may set (ADR 0040).
        """
        ...

    async def query_memory(
        self, ctx: AgentContext, query: str, *, kind: str | None, limit: int
    ) -> list[MemoryItem]:
        """Searches the agent's memory."""
        ...


@dataclass(frozen=True)
class EgressDecision:
    """Whether the agent may open a connection to a destination, and why."""

    allowed: bool
    reason: str = ""


class EgressPolicy(Protocol):
    """Decides each egress destination (host name as the agent asked for it, and port)."""

    async def check_egress(self, ctx: AgentContext, host: str, port: int) -> EgressDecision: ...


@dataclass(frozen=True)
class AuditRecord:
    """One audited channel event (egress decisions and connection ends)."""

    event_type: str
    task_id: str
    agent_id: str
    decision: str = ""  # allow | deny | "" when not a decision
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class AuditSink(Protocol):
    """Writes audit records; a failure makes the audited action fail (fail closed)."""

    async def record(self, record: AuditRecord) -> None: ...
