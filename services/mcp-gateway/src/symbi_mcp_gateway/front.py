"""The gateway as an MCP server: agents and any MCP client reach verified tools here.

:class:`GatewayMcpEndpoint` serves streamable HTTP (``/mcp``) with the ``mcp`` SDK's low-level
server. An agent identifies itself with ``Authorization: Bearer <token>``; the
:class:`~symbi_mcp_gateway.ports.AgentAuthenticator` port maps the token to an agent id, and a
request without a valid token is answered 401 before any MCP message is read. The SDK binds
each MCP session to the credential that opened it, so one agent cannot ride another's session.
(docs/adr/0082-agent-identity-on-the-mcp-endpoint.md)

The agent sees only tools that are usable and that the policy lets it call, named
``<server>__<tool>``, described by the *verified* tool document and nothing else. Calls go
through :meth:`ToolGateway.invoke`, the same checked path as gRPC and the bus. A refusal comes
back as a tool result with ``isError`` and the reason (so a model can read it and adapt); an
unknown tool is a JSON-RPC ``INVALID_PARAMS`` error, as the MCP specification asks.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp import MCPError
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)
from starlette.applications import Starlette

from symbi_common.errors import NotFound, SymbiError
from symbi_mcp_gateway.catalog import ToolView
from symbi_mcp_gateway.gateway import ToolGateway
from symbi_mcp_gateway.ports import AgentAuthenticator

__all__ = ["TOOL_NAME_SEPARATOR", "GatewayMcpEndpoint", "exposed_name", "split_exposed_name"]

logger = logging.getLogger(__name__)

#: Between server and tool in exposed names; server names cannot contain it.
TOOL_NAME_SEPARATOR = "__"
#: ``_meta`` key of the Symbi error details on a refused call's result.
ERROR_META_KEY = "dev.symbi/error"


def exposed_name(server: str, tool: str) -> str:
    """``<server>__<tool>``: the name an agent sees."""
    return f"{server}{TOOL_NAME_SEPARATOR}{tool}"


def split_exposed_name(name: str) -> tuple[str, str]:
    """Inverse of :func:`exposed_name`.

    Raises:
        NotFound: the name has no server part.
    """
    server, sep, tool = name.partition(TOOL_NAME_SEPARATOR)
    if not sep or not server or not tool:
        raise NotFound(f"unknown tool {name!r}", reason="TOOL_NOT_FOUND")
    return server, tool


class _TokenVerifier:
    """The SDK's ``TokenVerifier`` over our :class:`AgentAuthenticator` port."""

    def __init__(self, authenticator: AgentAuthenticator) -> None:
        self._authenticator = authenticator

    async def verify_token(self, token: str) -> AccessToken | None:
        agent_id = await self._authenticator.authenticate(token)
        if agent_id is None:
            return None
        return AccessToken(token=token, client_id=agent_id, scopes=[])


def _mcp_tool(view: ToolView) -> Tool:
    definition = view.definition
    wire: dict[str, Any] = {
        **dict(definition.document),
        "name": exposed_name(view.server, definition.name),
    }
    tool = Tool.model_validate(wire, by_alias=True)
    return tool


def _agent_of(ctx: ServerRequestContext[Any, Any]) -> str:
    request = ctx.request
    user = request.scope.get("user") if request is not None else None
    if not isinstance(user, AuthenticatedUser):
        # The bearer middleware answers 401 before this; reaching here is a wiring bug.
        raise MCPError(code=INVALID_PARAMS, message="the request carries no agent identity")
    agent: str = user.access_token.client_id
    return agent


class GatewayMcpEndpoint:
    """Streamable-HTTP MCP server in front of a :class:`ToolGateway`."""

    def __init__(
        self,
        gateway: ToolGateway,
        authenticator: AgentAuthenticator,
        *,
        name: str = "symbi-mcp-gateway",
        version: str = "0.1.0",
    ) -> None:
        self._gateway = gateway
        self._authenticator = authenticator
        self.server: Server[Any] = Server(
            name,
            version=version,
            instructions="Tools verified by the Symbi MCP gateway; every call is policy-checked and audited.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    def asgi_app(
        self,
        *,
        base_url: str,
        path: str = "/mcp",
        allowed_hosts: list[str] | None = None,
        max_sessions: int | None = 1024,
    ) -> Starlette:
        """The ASGI application to serve (uvicorn, hypercorn).

        ``base_url`` is where agents reach the gateway (``http://gateway:8080``); it names the
        protected resource in 401 answers. ``allowed_hosts`` (``host:port`` patterns) turns on
        DNS-rebinding protection for those Host headers; loopback hosts are always allowed.
        """
        hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *(allowed_hosts or [])]
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=hosts,
            allowed_origins=[f"http://{host}" for host in hosts]
            + [f"https://{host}" for host in hosts],
        )
        return self.server.streamable_http_app(
            streamable_http_path=path,
            transport_security=security,
            max_sessions=max_sessions,
            auth=AuthSettings(issuer_url=base_url, resource_server_url=None),
            token_verifier=_TokenVerifier(self._authenticator),
        )

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        agent = _agent_of(ctx)
        try:
            views = await self._gateway.tools_for_agent(agent)
        except SymbiError as exc:
            logger.warning("tool listing for %s failed: %s", agent, exc.message)
            views = []  # fail closed: nothing is shown when policy cannot be asked
        return ListToolsResult(tools=[_mcp_tool(view) for view in views])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
    ) -> CallToolResult:
        agent = _agent_of(ctx)
        try:
            server, tool = split_exposed_name(params.name)
            result = await self._gateway.invoke(
                agent, server, tool, params.arguments or {}, origin={"via": "mcp-endpoint"}
            )
        except NotFound as exc:
            raise MCPError(
                code=INVALID_PARAMS, message=f"Unknown tool: {params.name} ({exc.message})"
            ) from None
        except SymbiError as exc:
            return CallToolResult(
                content=[TextContent(type="text", text=f"refused ({exc.reason}): {exc.message}")],
                is_error=True,
                _meta={ERROR_META_KEY: {"reason": exc.reason, "code": exc.code.name}},
            )
        raw = result.raw
        wire: dict[str, Any] = {"content": raw.get("content", []), "isError": result.is_error}
        if "structuredContent" in raw:
            wire["structuredContent"] = raw["structuredContent"]
        return CallToolResult.model_validate(wire, by_alias=True)
