"""Real MCP servers for the gateway's integration tests.

- :class:`SignedToolServer`: an ``mcp`` MCPServer over streamable HTTP on a port the kernel
  picks (uvicorn on port 0), serving its ``.well-known/schemapin.json`` and tools signed with
  schemapin; the test can rug-pull, tamper, re-sign and rotate its key while it runs.
- ``serve_asgi``: any ASGI app on loopback port 0 (the gateway's own MCP endpoint).
- ``open_gateway``: a :class:`ToolGateway` with the real session opener and resolvers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from schemapin import KeyManager, create_well_known_response
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from symbi_mcp_gateway import (
    SIGNATURE_META_KEY,
    GatewayConfig,
    MemoryPinStore,
    ToolGateway,
    build_resolver,
    sign_tool_document,
    tool_document,
)
from symbi_mcp_gateway.config import SchemaPinConfig
from symbi_testing.eventually import eventually

if TYPE_CHECKING:
    from ..conftest import RecordingAlerts, RecordingAudit, RulePolicy

SIGNED_DOMAIN = "signed-tools.test"


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done(), timeout=10, message="uvicorn start")
        if task.done():
            task.result()
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def serve_asgi() -> Callable[[Any], contextlib.AbstractAsyncContextManager[str]]:
    return _serve


class SignedToolServer:
    """A real MCP server whose tools are SchemaPin-signed, with levers for attacks."""

    def __init__(self) -> None:
        self.private_pem, self.public_pem = self._new_keys()
        self.revoked: list[str] = []
        self.base_url = ""
        self.mcp = MCPServer("signed-tools", log_level="WARNING")

        @self.mcp.tool(
            description="Add two integers", annotations=ToolAnnotations(readOnlyHint=True)
        )
        def add(a: int, b: int) -> int:
            return a + b

        @self.mcp.tool(description="Echo the text back")
        def echo(text: str) -> str:
            return text

        @self.mcp.custom_route("/.well-known/schemapin.json", methods=["GET"])
        async def well_known(request: Request) -> Response:
            return JSONResponse(
                create_well_known_response(
                    self.public_pem, "Signed Tools Test", revoked_keys=self.revoked
                )
            )

    @staticmethod
    def _new_keys() -> tuple[str, str]:
        private, public = KeyManager.generate_keypair()
        return KeyManager.export_private_key_pem(private), KeyManager.export_public_key_pem(public)

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def well_known_url(self) -> str:
        return f"{self.base_url}/.well-known/schemapin.json"

    def _tool(self, name: str) -> Any:
        tool = self.mcp._tool_manager.get_tool(name)
        assert tool is not None
        return tool

    async def sign_all(self) -> None:
        """Sign every tool with the current key, exactly as it is listed."""
        for listed in await self.mcp.list_tools():
            wire = listed.model_dump(by_alias=True, mode="json", exclude_none=True)
            signature = sign_tool_document(tool_document(wire), self.private_pem)
            self._tool(listed.name).meta = {SIGNATURE_META_KEY: signature}

    def rug_pull(self, name: str, description: str) -> None:
        """Change a tool's description and keep the old signature (an attack)."""
        self._tool(name).description = description

    async def update(self, name: str, description: str) -> None:
        """Change a tool's description and sign it properly (a legitimate release)."""
        self._tool(name).description = description
        await self.sign_all()

    async def rotate_key(self, *, revoke_old: bool = False) -> None:
        """Switch to a new key, re-sign everything, publish the new key."""
        old_public = self.public_pem
        self.private_pem, self.public_pem = self._new_keys()
        if revoke_old:
            self.revoked.append(KeyManager.calculate_key_fingerprint_from_pem(old_public))
        await self.sign_all()


@pytest.fixture
async def signed_server() -> AsyncIterator[SignedToolServer]:
    server = SignedToolServer()
    await server.sign_all()
    async with _serve(server.mcp.streamable_http_app()) as base_url:
        server.base_url = base_url
        yield server


@pytest.fixture
def pins() -> MemoryPinStore:
    return MemoryPinStore()


@pytest.fixture
def open_gateway(
    pins: MemoryPinStore, policy: RulePolicy, audit: RecordingAudit, alerts: RecordingAlerts
) -> Callable[..., contextlib.AbstractAsyncContextManager[ToolGateway]]:
    @contextlib.asynccontextmanager
    async def opener(
        *, well_known_urls: dict[str, str] | None = None, **config: Any
    ) -> AsyncIterator[ToolGateway]:
        schemapin = SchemaPinConfig(well_known_urls=well_known_urls or {}, discovery_ttl_s=0)
        gateway_config = GatewayConfig(
            reconnect_initial_s=0.05, reconnect_max_s=0.5, schemapin=schemapin, **config
        )
        async with httpx.AsyncClient() as http:
            gateway = ToolGateway(
                gateway_config,
                pins=pins,
                policy=policy,
                audit=audit,
                alerts=alerts,
                resolver=build_resolver(schemapin, http),
            )
            async with gateway:
                yield gateway

    return opener
