"""The agent channel: a Unix socket per task, bridged to the platform through ports."""

from symbi_sandbox.channel.egress import DEFAULT_BLOCKED_NETWORKS, EgressConfig, EgressGate
from symbi_sandbox.channel.ports import (
    AgentContext,
    AgentMessage,
    AuditRecord,
    AuditSink,
    ChannelBackend,
    EgressDecision,
    EgressPolicy,
    JsonValue,
    MemoryItem,
    Subscription,
)
from symbi_sandbox.channel.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    OPERATIONS,
    PROTOCOL_VERSION,
    FrameTooLarge,
    encode_frame,
    read_frame,
)
from symbi_sandbox.channel.server import SOCKET_NAME, ChannelConfig, ChannelEndpoint, ChannelServer

__all__ = [
    "DEFAULT_BLOCKED_NETWORKS",
    "DEFAULT_MAX_FRAME_BYTES",
    "OPERATIONS",
    "PROTOCOL_VERSION",
    "SOCKET_NAME",
    "AgentContext",
    "AgentMessage",
    "AuditRecord",
    "AuditSink",
    "ChannelBackend",
    "ChannelConfig",
    "ChannelEndpoint",
    "ChannelServer",
    "EgressConfig",
    "EgressDecision",
    "EgressGate",
    "EgressPolicy",
    "FrameTooLarge",
    "JsonValue",
    "MemoryItem",
    "Subscription",
    "encode_frame",
    "read_frame",
]
