"""Settings of the mcp-gateway service (see symbi_common.config for the shared sections).

The gateway extends the original runtime's ``[mcp]`` section with everything
:class:`~symbi_mcp_gateway.config.GatewayConfig` reads (limits, ``[mcp.schemapin]``,
``[[mcp.servers]]``) and with what only the process needs: the agent-facing MCP endpoint
(``[mcp.endpoint]``), agent tokens (``[mcp.agent_tokens]``) and the bus responders. ::

    [mcp]
    tool_verification = "strict"
    max_concurrent_connections = 100     # in-flight calls per server (its one pooled session)

    [mcp.endpoint]
    host = "0.0.0.0"
    port = 50156                         # 0: any free port (logged and printed at start)
    public_url = "https://tools.symbi.example"

    [[mcp.servers]]
    name = "time"
    command = "mcp-server-time"
    trust_mode = "permissive"
    domain = "time.example"

``[[mcp.servers]]`` entries are validated by :func:`~symbi_mcp_gateway.config.load_gateway_config`
when the service is built (an invalid entry stops the process with exit status 2 and a line
naming the key, e.g. ``mcp.servers[0].url``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field, field_validator

from symbi_common.config import (
    GrpcSection,
    McpSection,
    Section,
    ServiceSettings,
    TelemetrySection,
)
from symbi_mcp_gateway.config import GatewayConfig, SchemaPinConfig, load_gateway_config

__all__ = [
    "AgentTokenSection",
    "EndpointSection",
    "GatewayMcpSection",
    "McpGatewaySettings",
]

#: Keys of the section that are the process's, not the domain core's.
_PROCESS_KEYS = frozenset({"endpoint", "agent_tokens", "bus_responders", "runtime_stdio_servers"})


class EndpointSection(Section):
    """``[mcp.endpoint]``: the gateway's own MCP server (streamable HTTP) for agents."""

    enabled: bool = True
    host: str = "127.0.0.1"
    #: 0 picks a free port; the bound address is logged and printed as
    #: ``SYMBI-MCP-ENDPOINT url=…`` on stdout. Left at its default while the gRPC port is 0,
    #: it is 0 too (see ``app.endpoint_port``).
    port: int = Field(50156, ge=0, le=65535)
    path: str = Field("/mcp", pattern=r"^/[A-Za-z0-9/_.-]*$")
    #: The base URL agents use (behind a proxy or TLS terminator); default
    #: ``http://<host>:<bound port>``.
    public_url: str | None = None
    #: Host headers accepted besides loopback (DNS-rebinding protection), ``host:port`` patterns.
    allowed_hosts: tuple[str, ...] = ()
    max_sessions: int = Field(1024, ge=1, le=100_000)
    #: How long open HTTP streams get to finish at shutdown.
    shutdown_grace_s: float = Field(2.0, ge=0, le=60)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// base URL")
        return value.rstrip("/") if value else value


class AgentTokenSection(Section):
    """``[mcp.agent_tokens]``: bearer tokens of the MCP endpoint (docs/adr/0084)."""

    #: Lifetime of tokens IssueAgentToken hands out when the caller does not ask for one.
    default_ttl_s: int = Field(3600, ge=10, le=7 * 86_400)
    #: Longest lifetime accepted, for issued and for agent-signed tokens alike.
    max_ttl_s: int = Field(86_400, ge=10, le=30 * 86_400)
    #: How far an issuer's clock may be ahead of ours.
    clock_skew_s: float = Field(30.0, ge=0, le=600)


class GatewayMcpSection(McpSection):
    """``[mcp]`` as the gateway reads it (see the module docstring).

    ``max_concurrent_connections`` keeps the original runtime's default of 100 and means, here,
    the in-flight calls allowed on one server's pooled session (ADR 0083); a server entry may
    set its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_timeout_s: float = Field(60.0, gt=0, le=3600)
    max_result_bytes: int = Field(1_048_576, ge=1024, le=256 * 1024 * 1024)
    max_argument_bytes: int = Field(262_144, ge=256, le=64 * 1024 * 1024)
    max_message_bytes: int = Field(8 * 1024 * 1024, ge=4096, le=1024 * 1024 * 1024)
    refresh_interval_s: float = Field(300.0, ge=0, le=86_400)
    list_changed_debounce_s: float = Field(0.2, ge=0, le=60)
    reconnect_initial_s: float = Field(0.2, gt=0, le=60)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    audit_timeout_s: float = Field(2.0, gt=0, le=60)
    policy_timeout_s: float = Field(2.0, gt=0, le=60)
    pin_store_timeout_s: float = Field(5.0, gt=0, le=60)
    approval_ttl_s: float = Field(3600.0, ge=1, le=30 * 86_400)
    schemapin: SchemaPinConfig = SchemaPinConfig()
    #: ``[[mcp.servers]]`` (validated with the rest by :meth:`gateway_config`).
    servers: tuple[dict[str, Any], ...] = ()
    endpoint: EndpointSection = EndpointSection()
    agent_tokens: AgentTokenSection = AgentTokenSection()
    #: Bus requests (symbi.rpc.mcp.*) answered at once by this replica.
    bus_responders: int = Field(8, ge=1, le=256)
    #: Whether gRPC RegisterServer may start stdio servers (a process on the gateway's host,
    #: run by whoever reaches the gRPC API). Off: stdio servers come from this file only.
    runtime_stdio_servers: bool = False

    def gateway_config(self) -> GatewayConfig:
        """The domain core's configuration.

        Raises:
            ConfigError: a server entry (or a combination of keys) is invalid; the message
                names each key (``mcp.servers[1].url``), its value and what is allowed.
        """
        data = self.model_dump(exclude=set(_PROCESS_KEYS))
        data["schemapin"] = self.schemapin
        return load_gateway_config(data)


class McpGatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "mcp-gateway"

    grpc: GrpcSection = GrpcSection(port=50056)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9469)
    mcp: GatewayMcpSection = GatewayMcpSection()
