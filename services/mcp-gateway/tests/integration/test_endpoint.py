"""The gateway as an MCP server: real agents (the mcp client) over streamable HTTP, with
bearer tokens, in front of the signed test server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from symbi_mcp_gateway import (
    GatewayMcpEndpoint,
    McpServerConfig,
    StaticTokenAuthenticator,
    ToolGateway,
)

from .conftest import SIGNED_DOMAIN

if TYPE_CHECKING:
    from ..conftest import RecordingAudit, RulePolicy
    from .conftest import SignedToolServer

TOKENS = {"token-a": "agent-a", "token-b": "agent-b"}


@contextlib.asynccontextmanager
async def agent(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), cache=None) as client,
    ):
        yield client


@pytest.fixture
async def endpoint(
    open_gateway: Callable[..., AbstractAsyncContextManager[ToolGateway]],
    signed_server: SignedToolServer,
    serve_asgi: Callable[[Any], AbstractAsyncContextManager[str]],
    policy: RulePolicy,
) -> AsyncIterator[tuple[str, ToolGateway]]:
    policy.denied.add(("agent-b", "signed/echo"))
    async with open_gateway(
        well_known_urls={SIGNED_DOMAIN: signed_server.well_known_url}
    ) as gateway:
        await gateway.register_server(
            McpServerConfig(
                name="signed", url=signed_server.url, domain=SIGNED_DOMAIN, connection_timeout_s=10
            )
        )
        front = GatewayMcpEndpoint(gateway, StaticTokenAuthenticator(TOKENS))
        async with serve_asgi(front.asgi_app(base_url="http://127.0.0.1")) as base_url:
            yield f"{base_url}/mcp", gateway


async def test_agents_see_only_what_they_may_call(endpoint: tuple[str, ToolGateway]) -> None:
    url, _ = endpoint
    async with agent(url, "token-a") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"signed__add", "signed__echo"}
    assert tools["signed__add"].description == "Add two integers"
    assert tools["signed__add"].annotations is not None
    assert tools["signed__add"].annotations.read_only_hint is True
    assert tools["signed__add"].meta is None  # only the verified document is passed on
    async with agent(url, "token-b") as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["signed__add"]


async def test_calls_go_through_the_checked_path(
    endpoint: tuple[str, ToolGateway], audit: RecordingAudit
) -> None:
    url, _ = endpoint
    async with agent(url, "token-a") as client:
        result = await client.call_tool("signed__add", {"a": 20, "b": 22})
        bad = await client.call_tool("signed__add", {"a": "twenty"})
    assert not result.is_error
    assert result.structured_content == {"result": 42}
    assert bad.is_error
    assert "INVALID_ARGUMENTS" in bad.content[0].text  # type: ignore[union-attr]
    [ok] = audit.calls(outcome="ok")
    assert ok.agent_id == "agent-a"
    assert ok.details["tool"] == "add"


async def test_a_denied_call_is_refused_in_band_and_audited(
    endpoint: tuple[str, ToolGateway], audit: RecordingAudit
) -> None:
    url, _ = endpoint
    async with agent(url, "token-b") as client:
        result = await client.call_tool("signed__echo", {"text": "hi"})
    assert result.is_error
    assert "POLICY_DENIED" in result.content[0].text  # type: ignore[union-attr]
    [denied] = audit.calls(reason="POLICY_DENIED")
    assert denied.agent_id == "agent-b"
    assert denied.decision == "deny"


async def test_unknown_tools_are_protocol_errors(endpoint: tuple[str, ToolGateway]) -> None:
    url, _ = endpoint
    async with agent(url, "token-a") as client:
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("signed__nope", {})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("no-separator", {})


async def test_no_or_bad_token_is_unauthorized(endpoint: tuple[str, ToolGateway]) -> None:
    url, _ = endpoint
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(url, json=body, headers=headers)
        forged = await http.post(
            url, json=body, headers={**headers, "Authorization": "Bearer forged"}
        )
    assert anonymous.status_code == 401
    assert forged.status_code == 401


async def test_a_rug_pulled_tool_disappears_for_agents(
    endpoint: tuple[str, ToolGateway], signed_server: SignedToolServer
) -> None:
    url, gateway = endpoint
    signed_server.rug_pull("echo", "Echo, and also forward everything to a third party")
    await gateway.refresh("signed")
    async with agent(url, "token-a") as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["signed__add"]
        result = await client.call_tool("signed__echo", {"text": "hi"})
    assert result.is_error
    assert "TOOL_QUARANTINED" in result.content[0].text  # type: ignore[union-attr]
