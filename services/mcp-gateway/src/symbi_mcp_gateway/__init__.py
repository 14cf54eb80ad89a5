"""Symbi's MCP gateway: verified tools for agents, with key pinning and rug-pull defence.

The domain core (no grpc, no nats): :class:`ToolGateway` with its ports
(:class:`PolicyPort`, :class:`AuditPort`, :class:`AlertPort`, :class:`PinStore`,
:class:`KeyResolver`, :class:`AgentAuthenticator`) and :class:`GatewayMcpEndpoint`, the
gateway's own MCP server. See docs/mcp-gateway.md.
"""

from symbi_mcp_gateway.audit import GATEWAY_ACTOR, AlertKind, AuditEvent, SecurityAlert
from symbi_mcp_gateway.catalog import ToolView
from symbi_mcp_gateway.config import (
    GatewayConfig,
    McpServerConfig,
    SchemaPinConfig,
    TransportKind,
    TrustMode,
    load_gateway_config,
)
from symbi_mcp_gateway.definition import (
    SIGNATURE_META_KEY,
    ToolDefinition,
    canonical_json,
    sha256_digest,
    sign_tool_document,
    tool_document,
)
from symbi_mcp_gateway.front import GatewayMcpEndpoint, exposed_name, split_exposed_name
from symbi_mcp_gateway.gateway import ServerInfo, ToolGateway, ToolResult
from symbi_mcp_gateway.pins import MemoryPinStore, PinStore, StoredPin, ToolPin
from symbi_mcp_gateway.policy import (
    Decision,
    PolicyDecision,
    ToolCallAuthorization,
    summarize_arguments,
)
from symbi_mcp_gateway.ports import (
    AgentAuthenticator,
    AlertPort,
    AuditPort,
    PolicyPort,
    StaticTokenAuthenticator,
)
from symbi_mcp_gateway.resolver import (
    BundleResolver,
    CachingResolver,
    ChainResolver,
    DirectoryResolver,
    Discovery,
    KeyResolver,
    WellKnownResolver,
    build_resolver,
)
from symbi_mcp_gateway.trust import ToolStatus
from symbi_mcp_gateway.upstream import McpSession, SessionOpener, open_mcp_session
from symbi_mcp_gateway.verifier import SignatureCheck, SignatureOutcome, check_signature

__all__ = [
    "GATEWAY_ACTOR",
    "SIGNATURE_META_KEY",
    "AgentAuthenticator",
    "AlertKind",
    "AlertPort",
    "AuditEvent",
    "AuditPort",
    "BundleResolver",
    "CachingResolver",
    "ChainResolver",
    "Decision",
    "DirectoryResolver",
    "Discovery",
    "GatewayConfig",
    "GatewayMcpEndpoint",
    "KeyResolver",
    "McpServerConfig",
    "McpSession",
    "MemoryPinStore",
    "PinStore",
    "PolicyDecision",
    "PolicyPort",
    "SchemaPinConfig",
    "SecurityAlert",
    "ServerInfo",
    "SessionOpener",
    "SignatureCheck",
    "SignatureOutcome",
    "StaticTokenAuthenticator",
    "StoredPin",
    "ToolCallAuthorization",
    "ToolDefinition",
    "ToolGateway",
    "ToolPin",
    "ToolResult",
    "ToolStatus",
    "ToolView",
    "TransportKind",
    "TrustMode",
    "WellKnownResolver",
    "build_resolver",
    "canonical_json",
    "check_signature",
    "exposed_name",
    "load_gateway_config",
    "open_mcp_session",
    "sha256_digest",
    "sign_tool_document",
    "split_exposed_name",
    "summarize_arguments",
    "tool_document",
]
