"""The agent channel's backend over the secure bus.

:class:`BusChannelBackend` implements the channel's ChannelBackend: every call is decided by
the policy service and audited (:class:`PolicyGate`, ADR 0068) before it happens, then done
on the bus — as the agent itself for messages, topics and requests (its session,
:mod:`symbi_sandbox.agent_sessions`), as the node vouching for the agent for tool calls and
memory (contract C4; the gateway and the context service ask policy for the agent again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from symbi.context.v1 import context_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2
from symbi_common.bus import SecureBus
from symbi_common.crypto.identity import check_principal_id
from symbi_common.errors import InvalidArgument
from symbi_common.jetstream.spec import Subjects
from symbi_common.policy_client import EntityRef
from symbi_sandbox.agent_sessions import AgentSessions, TopicSubscription
from symbi_sandbox.channel.ports import AgentContext, AgentMessage, JsonValue, MemoryItem
from symbi_sandbox.events import (
    CONTEXT_RETRIEVE_SUBJECT,
    CONTEXT_STORE_SUBJECT,
    JSON_CONTENT_TYPE,
    MCP_INVOKE_SUBJECT,
    PLATFORM,
    agent_rpc_subject,
    agent_topic,
    decode_payload,
    encode_payload,
)
from symbi_sandbox.policy_gate import PolicyGate, entity, strip_guard_tags

__all__ = ["BusChannelBackend"]

_MEMORY_TYPES = {
    "short_term": context_pb2.MEMORY_TYPE_SHORT_TERM,
    "long_term": context_pb2.MEMORY_TYPE_LONG_TERM,
    "working": context_pb2.MEMORY_TYPE_WORKING,
    "shared": context_pb2.MEMORY_TYPE_SHARED,
}
_MEMORY_NAMES = {v: k for k, v in _MEMORY_TYPES.items()}


def _check_target(target: str, field: str) -> tuple[EntityRef, dict[str, Any]]:
    """The policy resource of a message's recipient, and the entity vouched if unknown."""
    try:
        check_principal_id(target)
    except InvalidArgument:
        raise InvalidArgument(
            f"{field} must be a principal id (agent-…, svc-…), got {target!r}",
            reason="MALFORMED_CALL",
            details={"field": field},
        ) from None
    if target.startswith(("svc-", "node-")):
        return EntityRef("Service", target), entity("Service", target, {"role": "service"})
    return EntityRef("Agent", target), entity("Agent", target)


class BusChannelBackend:
    """ChannelBackend over the bus: policy, audit, then the call as the agent (or the node)."""

    def __init__(
        self,
        node_bus: SecureBus,
        gate: PolicyGate,
        sessions: AgentSessions,
        *,
        request_timeout_s: float = 25.0,
    ) -> None:
        self._node_bus = node_bus
        self._gate = gate
        self._sessions = sessions
        self._timeout_s = request_timeout_s

    async def send(self, ctx: AgentContext, recipient: str, payload: JsonValue) -> str:
        target, vouched = _check_target(recipient, "to")
        data = encode_payload(payload)
        await self._gate.authorize(
            ctx, "send", "send_message", target, context={}, if_unknown=[vouched]
        )
        bus = await self._sessions.get(ctx).bus()
        return await bus.send(recipient, data, content_type=JSON_CONTENT_TYPE)

    async def receive(self, ctx: AgentContext, timeout_s: float) -> AgentMessage | None:
        message = await self._sessions.get(ctx).receive(timeout_s)
        if message is not None:
            await self._gate.record(
                "sandbox.channel.receive",
                ctx,
                {"task_id": ctx.task_id, "sender": message.sender, "msg_id": message.message_id},
            )
        return message

    async def publish(self, ctx: AgentContext, topic: str, payload: JsonValue) -> str:
        name, bus_topic = agent_topic(topic)
        data = encode_payload(payload)
        await self._gate.authorize(
            ctx, "publish", "publish", EntityRef("Topic", name), entities=[entity("Topic", name)]
        )
        bus = await self._sessions.get(ctx).bus()
        return await bus.publish(
            bus_topic, data, subject=Subjects.topic(bus_topic), content_type=JSON_CONTENT_TYPE
        )

    async def subscribe(self, ctx: AgentContext, topic: str) -> TopicSubscription:
        name, bus_topic = agent_topic(topic)
        await self._gate.authorize(
            ctx,
            "subscribe",
            "subscribe",
            EntityRef("Topic", name),
            entities=[entity("Topic", name)],
        )
        return await self._sessions.get(ctx).subscribe(name, bus_topic)

    async def request(
        self, ctx: AgentContext, target: str, payload: JsonValue, timeout_s: float
    ) -> JsonValue:
        resource, vouched = _check_target(target, "to")
        data = encode_payload(payload)
        await self._gate.authorize(
            ctx,
            "request",
            "send_message",
            resource,
            context={"method": "call"},
            if_unknown=[vouched],
        )
        bus = await self._sessions.get(ctx).bus()
        reply = await bus.request(
            agent_rpc_subject(target),
            data,
            recipient=target,
            timeout=timeout_s,
            content_type=JSON_CONTENT_TYPE,
        )
        return decode_payload(reply.content_type, reply.payload)

    async def call_tool(
        self, ctx: AgentContext, tool: str, arguments: Mapping[str, JsonValue]
    ) -> JsonValue:
        server, name = _split_tool(tool)
        await self._gate.authorize(
            ctx,
            "tool",
            "tool_call",
            EntityRef("Tool", f"{server}/{name}"),
            context={"tool": name, "server": server},
            arguments=arguments,
            entities=[
                entity("Tool", f"{server}/{name}", {"name": name}, [("McpServer", server)]),
                entity("McpServer", server),
            ],
        )
        request = mcp_gateway_pb2.InvokeToolRequest(
            agent_id=ctx.agent_id,
            server=server,
            tool=name,
            timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            request.arguments.update(dict(arguments))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"tool.call: arguments: {exc}", reason="MALFORMED_CALL") from None
        reply = await self._node_bus.request(
            MCP_INVOKE_SUBJECT, request, topic=PLATFORM, timeout=self._timeout_s + 1.0
        )
        response = reply.parse(mcp_gateway_pb2.InvokeToolResponse)
        return {
            "is_error": response.is_error,
            "structured_content": _struct(response.structured_content),
            "text": list(response.text),
            "result_hash": response.result_hash,
        }

    async def store_memory(
        self,
        ctx: AgentContext,
        content: str,
        *,
        kind: str,
        metadata: Mapping[str, JsonValue],
        tags: list[str] | None = None,
    ) -> str:
        memory_type = _memory_type(kind)
        await self._gate.authorize(
            ctx,
            "memory.store",
            "write_context",
            EntityRef("Agent", ctx.agent_id),
            context={"memory_type": kind},
        )
        item = context_pb2.MemoryItem(
            agent_id=ctx.agent_id,
            type=memory_type,
            content=content,
            tags=strip_guard_tags(tags),
            task_id=ctx.task_id,
        )
        try:
            item.metadata.update(dict(metadata))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"memory.store: metadata: {exc}", reason="MALFORMED_CALL"
            ) from None
        reply = await self._node_bus.request(
            CONTEXT_STORE_SUBJECT,
            context_pb2.StoreContextRequest(item=item),
            topic=PLATFORM,
            timeout=self._timeout_s,
        )
        return reply.parse(context_pb2.StoreContextResponse).id

    async def query_memory(
        self, ctx: AgentContext, query: str, *, kind: str | None, limit: int
    ) -> list[MemoryItem]:
        types = [_memory_type(kind)] if kind else []
        await self._gate.authorize(
            ctx,
            "memory.query",
            "read_context",
            EntityRef("Agent", ctx.agent_id),
            context={"memory_type": kind} if kind else {},
        )
        request = context_pb2.RetrieveContextRequest(
            agent_id=ctx.agent_id, query=query, types=types, limit=limit
        )
        reply = await self._node_bus.request(
            CONTEXT_RETRIEVE_SUBJECT, request, topic=PLATFORM, timeout=self._timeout_s
        )
        response = reply.parse(context_pb2.RetrieveContextResponse)
        return [
            MemoryItem(
                memory_id=scored.item.id,
                content=scored.item.content,
                score=scored.score,
                kind=_MEMORY_NAMES.get(scored.item.type, "long_term"),
                metadata=_struct(scored.item.metadata),
            )
            for scored in response.items
        ]


def _split_tool(tool: str) -> tuple[str, str]:
    """``server/tool``, ``server__tool`` or ``server.tool`` → (server, tool)."""
    for separator in ("/", "__", "."):
        if separator in tool:
            server, name = tool.split(separator, 1)
            if server and name:
                return server, name
    raise InvalidArgument(
        f"tool {tool!r} must name its server: server/tool (or server.tool, server__tool)",
        reason="MALFORMED_CALL",
        details={"field": "tool"},
    )


def _memory_type(kind: str) -> context_pb2.MemoryType:
    found = _MEMORY_TYPES.get(kind)
    if found is None:
        raise InvalidArgument(
            f"memory kind {kind!r}; allowed: {', '.join(_MEMORY_TYPES)}",
            reason="MALFORMED_CALL",
            details={"field": "kind"},
        )
    return found


def _struct(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)
