"""gRPC ``McpGatewayService``: proto → :class:`ToolGateway` → proto.

The gRPC API is for operators and platform services (mTLS in production): the ``agent_id``
of a request is believed, and operator actions record the ``actor`` the request names (or
the peer address). Agents use the MCP endpoint or the bus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi.mcp_gateway.v1 import mcp_gateway_pb2_grpc as pb_grpc
from symbi_common.crypto.identity import PrincipalKeys
from symbi_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SymbiError,
    Unavailable,
)
from symbi_common.grpc import ERROR_METADATA_KEY, caller, error_info
from symbi_common.grpc.status import status_code
from symbi_mcp_gateway.audit import AuditEvent
from symbi_mcp_gateway.config import GatewayConfig, McpServerConfig, TransportKind
from symbi_mcp_gateway.convert import (
    approval_to_proto,
    arguments_from_request,
    pin_to_proto,
    result_to_proto,
    server_config_from_proto,
    server_to_proto,
    tool_to_proto,
)
from symbi_mcp_gateway.gateway import ToolGateway
from symbi_mcp_gateway.kv_servers import KvServerRegistry
from symbi_mcp_gateway.ports import AuditPort
from symbi_mcp_gateway.settings import AgentTokenSection
from symbi_mcp_gateway.tokens import check_agent_id, issue_agent_token

__all__ = ["GatewayContext", "McpGatewayServicer"]

logger = logging.getLogger(__name__)

#: gRPC retry pushback: a negative value tells the client not to retry this call.
_RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"


@dataclass(frozen=True)
class GatewayContext:
    """What the servicer works with once the service has started."""

    gateway: ToolGateway
    config: GatewayConfig
    registry: KvServerRegistry
    signer: PrincipalKeys
    tokens: AgentTokenSection
    audit: AuditPort
    #: Where the MCP endpoint listens ("" when it is off).
    endpoint_url: str
    #: Whether RegisterServer may start stdio servers.
    runtime_stdio: bool = False

    @property
    def configured(self) -> frozenset[str]:
        return frozenset(server.name for server in self.config.servers)


def _actor(requested: str, context: Any) -> str:
    if requested:
        return requested[:128]
    peer = context.peer() if context is not None else ""
    return f"grpc:{peer}" if peer else "grpc"


class McpGatewayServicer(pb_grpc.McpGatewayServiceServicer):
    """Thin: every method converts, calls the gateway, converts back."""

    def __init__(self) -> None:
        self._context: GatewayContext | None = None

    def attach(self, context: GatewayContext) -> None:
        self._context = context

    def _ctx(self) -> GatewayContext:
        if self._context is None:
            raise Unavailable("the MCP gateway is starting", reason="STARTING")
        return self._context

    async def RegisterServer(self, request: pb.RegisterServerRequest, context: Any) -> pb.McpServer:
        ctx = self._ctx()
        config = server_config_from_proto(request.server, ctx.config)
        if config.transport is TransportKind.STDIO and not ctx.runtime_stdio:
            raise PermissionDenied(
                "stdio servers run a command on the gateway's host and are registered in the "
                "[mcp] configuration; set mcp.runtime_stdio_servers = true to allow it at run time",
                reason="STDIO_REGISTRATION_DISABLED",
            )
        if config.name in ctx.configured:
            if ctx.gateway.server_info(config.name).config != config:
                raise AlreadyExists(
                    f"server {config.name!r} is defined in the [mcp] configuration; "
                    "change it there",
                    reason="SERVER_CONFIGURED",
                )
        else:
            await ctx.registry.add(config)
            await self._register_local(ctx, config)
        if request.wait:
            info = await ctx.gateway.wait_connected(config.name, config.connection_timeout_s)
        else:
            info = ctx.gateway.server_info(config.name)
        return server_to_proto(info, configured=config.name in ctx.configured)

    @staticmethod
    async def _register_local(ctx: GatewayContext, config: McpServerConfig) -> None:
        try:
            await ctx.gateway.register_server(config, wait=False)
        except AlreadyExists:
            # Registered here before with other settings that the bucket no longer holds.
            await ctx.gateway.remove_server(config.name)
            await ctx.gateway.register_server(config, wait=False)

    async def RemoveServer(
        self, request: pb.RemoveServerRequest, context: Any
    ) -> pb.RemoveServerResponse:
        ctx = self._ctx()
        if request.name in ctx.configured:
            raise FailedPrecondition(
                f"server {request.name!r} is defined in the [mcp] configuration; remove it there",
                reason="SERVER_CONFIGURED",
            )
        existed = await ctx.registry.remove(request.name)
        try:
            await ctx.gateway.remove_server(request.name)
            existed = True
        except NotFound:
            pass
        return pb.RemoveServerResponse(existed=existed)

    async def ListServers(
        self, request: pb.ListServersRequest, context: Any
    ) -> pb.ListServersResponse:
        ctx = self._ctx()
        configured = ctx.configured
        return pb.ListServersResponse(
            servers=[
                server_to_proto(info, configured=info.name in configured)
                for info in ctx.gateway.servers()
            ]
        )

    async def ListTools(self, request: pb.ListToolsRequest, context: Any) -> pb.ListToolsResponse:
        gateway = self._ctx().gateway
        server = request.server or None
        if request.agent_id:
            views = await gateway.tools_for_agent(check_agent_id(request.agent_id), server)
        else:
            views = gateway.tools(server, include_hidden=request.include_hidden)
        return pb.ListToolsResponse(tools=[tool_to_proto(view) for view in views])

    async def InvokeTool(
        self, request: pb.InvokeToolRequest, context: Any
    ) -> pb.InvokeToolResponse:
        gateway = self._ctx().gateway
        if not request.agent_id:
            raise InvalidArgument("agent_id is required", reason="AGENT_REQUIRED")
        try:
            result = await gateway.invoke(
                check_agent_id(request.agent_id),
                request.server,
                request.tool,
                arguments_from_request(request),
                timeout_s=request.timeout_ms / 1000 if request.timeout_ms else None,
                origin={"via": "grpc"},
            )
        except SymbiError as exc:
            if context is None:
                raise
            # Tools are not idempotent: a call that failed UNAVAILABLE may have run (the server
            # died mid-call), so clients' transparent retries are switched off (gRFC A6).
            await context.abort(
                status_code(exc),
                exc.message,
                trailing_metadata=(
                    (ERROR_METADATA_KEY, error_info(exc).SerializeToString()),
                    (_RETRY_PUSHBACK_KEY, "-1"),
                ),
            )
            raise  # unreachable: abort raises
        return result_to_proto(result)

    async def VerifyTool(self, request: pb.VerifyToolRequest, context: Any) -> pb.Tool:
        view = await self._ctx().gateway.verify_tool(request.server, request.tool)
        return tool_to_proto(view)

    async def ListPins(self, request: pb.ListPinsRequest, context: Any) -> pb.ListPinsResponse:
        pins = await self._ctx().gateway.pins()
        if request.server:
            pins = [pin for pin in pins if pin.server == request.server]
        return pb.ListPinsResponse(pins=[pin_to_proto(pin) for pin in pins])

    async def Unpin(self, request: pb.UnpinRequest, context: Any) -> pb.UnpinResponse:
        if "/" not in request.tool_id:
            raise InvalidArgument(
                f"tool_id {request.tool_id[:80]!r} is not <server>/<tool>", reason="BAD_TOOL_ID"
            )
        existed = await self._ctx().gateway.unpin(
            request.tool_id, actor=_actor(request.actor, context)
        )
        return pb.UnpinResponse(existed=existed)

    async def ApproveTool(self, request: pb.ApproveToolRequest, context: Any) -> pb.Tool:
        view = await self._ctx().gateway.approve(
            request.server,
            request.tool,
            actor=_actor(request.actor, context),
            definition_hash=request.definition_hash or None,
        )
        return tool_to_proto(view)

    async def ListApprovals(
        self, request: pb.ListApprovalsRequest, context: Any
    ) -> pb.ListApprovalsResponse:
        book = self._ctx().gateway.approvals
        approvals = await book.list(include_closed=request.include_closed)
        if request.server:
            approvals = [a for a in approvals if a.server == request.server]
        now = book.now_ms()
        return pb.ListApprovalsResponse(
            approvals=[approval_to_proto(a, now_ms=now) for a in approvals]
        )

    async def DecideApproval(
        self, request: pb.DecideApprovalRequest, context: Any
    ) -> pb.CallApproval:
        book = self._ctx().gateway.approvals
        # The authenticated principal decides; a label the request carries is kept beside it.
        who = caller()
        actor = who.principal_id if who is not None else "local"
        if request.actor:
            actor = f"{actor} ({request.actor[:128]})"
        approval = await book.decide(
            request.approval_id,
            approve=request.approve,
            actor=actor,
            tool_id=f"{request.server}/{request.tool}",
        )
        return approval_to_proto(approval, now_ms=book.now_ms())

    async def IssueAgentToken(
        self, request: pb.IssueAgentTokenRequest, context: Any
    ) -> pb.IssueAgentTokenResponse:
        ctx = self._ctx()
        agent = check_agent_id(request.agent_id)
        ttl = request.ttl_s or ctx.tokens.default_ttl_s
        if ttl > ctx.tokens.max_ttl_s:
            raise InvalidArgument(
                f"ttl_s {ttl} is longer than the {ctx.tokens.max_ttl_s}s allowed",
                reason="TTL_TOO_LONG",
            )
        token, claims = issue_agent_token(ctx.signer, agent, ttl_s=ttl)
        await ctx.audit.emit(
            AuditEvent(
                "mcp.agent_token.issued",
                actor=_actor("", context),
                agent_id=agent,
                details={"token_id": claims.token_id, "expires_at_ms": claims.expires_at_ms},
            )
        )
        return pb.IssueAgentTokenResponse(
            token=token, expires_at_ms=claims.expires_at_ms, endpoint_url=ctx.endpoint_url
        )
