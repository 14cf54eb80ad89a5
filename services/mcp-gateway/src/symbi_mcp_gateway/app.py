"""The mcp-gateway service process: the domain core wired to gRPC, the bus, KV and HTTP.

``start`` builds, in order: the pin store and server registry over KV buckets, the ports over
the bus (policy, audit, alerts), the :class:`ToolGateway` (in a long-lived task of its own,
which owns the upstream sessions), the followers of both buckets (another replica's pin change
or registration reaches this one), the bus responders of contract C4 (shared and per replica), and the agent-facing
MCP endpoint (uvicorn on a socket bound here; its URL is logged and printed as
``SYMBI-MCP-ENDPOINT url=…``). Configured servers get a bounded head start to connect
before the process reports SERVING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from symbi.mcp_gateway.v1 import mcp_gateway_pb2, mcp_gateway_pb2_grpc
from symbi_common.errors import AlreadyExists, NotFound
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import BucketSpec, StreamSpec
from symbi_common.policy_client import PolicyClient
from symbi_common.runner import Runtime
from symbi_common.service import binding
from symbi_mcp_gateway.authz import GATEWAY_RULES
from symbi_mcp_gateway.bus_ports import BusAlerts, BusAudit, BusPolicy
from symbi_mcp_gateway.config import McpServerConfig
from symbi_mcp_gateway.endpoint_server import EndpointServer
from symbi_mcp_gateway.events import (
    INVOKE,
    LIST_TOOLS,
    RESPONDER_QUEUE,
    ToolResponders,
    replica_subject,
    shared_subject,
)
from symbi_mcp_gateway.front import GatewayMcpEndpoint
from symbi_mcp_gateway.gateway import ToolGateway
from symbi_mcp_gateway.kv_approvals import KvApprovalStore, approvals_bucket
from symbi_mcp_gateway.kv_pins import PINS_BUCKET, KvPinStore
from symbi_mcp_gateway.kv_servers import SERVERS_BUCKET, KvServerRegistry
from symbi_mcp_gateway.metrics import MeteredAudit
from symbi_mcp_gateway.resolver import build_resolver
from symbi_mcp_gateway.servicer import GatewayContext, McpGatewayServicer
from symbi_mcp_gateway.settings import EndpointSection, McpGatewaySettings
from symbi_mcp_gateway.tokens import KeyringTokenAuthenticator

__all__ = ["ENDPOINT_LINE_PREFIX", "McpGatewayService", "build", "endpoint_port"]

logger = logging.getLogger(__name__)

#: Printed on stdout once the MCP endpoint listens: ``SYMBI-MCP-ENDPOINT url=http://…/mcp``.
ENDPOINT_LINE_PREFIX = "SYMBI-MCP-ENDPOINT"
#: How long configured servers get to connect before the process reports SERVING.
_STARTUP_CONNECT_S = 10.0
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def _endpoint_url(section: EndpointSection, port: int) -> str:
    if section.public_url:
        return section.public_url + section.path
    host = socket.gethostname() if section.host in _WILDCARD_HOSTS else section.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{section.path}"


def endpoint_port(settings: McpGatewaySettings) -> int:
    """The MCP endpoint's port: as configured; when it is left at its default and the gRPC
    port is 0 (any free port: tests, ``symbi up --ephemeral``), any free port too, so that
    several platforms on one machine do not collide."""
    endpoint = settings.mcp.endpoint
    if "port" not in endpoint.model_fields_set and settings.grpc.port == 0:
        return 0
    return endpoint.port


class McpGatewayService:
    """The :class:`~symbi_common.runner.Service` of the MCP gateway."""

    def __init__(self, settings: McpGatewaySettings) -> None:
        self._settings = settings
        #: Raises ConfigError (exit status 2) for an invalid [mcp] section.
        self._config = settings.mcp.gateway_config()
        self._servicer = McpGatewayServicer()
        self._http: httpx.AsyncClient | None = None
        self._gateway: ToolGateway | None = None
        self.endpoint_url = ""

    # ---- Service protocol

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                mcp_gateway_pb2,
                "McpGatewayService",
                mcp_gateway_pb2_grpc.add_McpGatewayServiceServicer_to_server,
                self._servicer,
                rules=GATEWAY_RULES,
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()

    def buckets(self) -> Sequence[BucketSpec]:
        return (PINS_BUCKET, SERVERS_BUCKET, approvals_bucket(self._config.approval_ttl_s))

    async def start(self, runtime: Runtime) -> None:
        section = self._settings.mcp
        bus = runtime.bus
        nc = runtime.nats

        def closing() -> bool:
            return nc.is_closed or nc.is_draining

        pins_name = runtime.provisioner.bucket_name(PINS_BUCKET)
        pins = KvPinStore(await runtime.js.key_value(pins_name), runtime.js, pins_name)
        registry = KvServerRegistry(
            await runtime.js.key_value(runtime.provisioner.bucket_name(SERVERS_BUCKET))
        )
        audit = MeteredAudit(BusAudit(bus.recorder, closing=closing))
        # The client answers a little before the gateway's own deadline, so a slow policy
        # service yields its clear "unavailable" reason rather than a bare timeout.
        policy = BusPolicy(PolicyClient(bus, timeout_s=self._config.policy_timeout_s * 0.9))
        self._http = httpx.AsyncClient(follow_redirects=False)
        approvals_name = runtime.provisioner.bucket_name(
            approvals_bucket(self._config.approval_ttl_s)
        )
        gateway = ToolGateway(
            self._config,
            pins=pins,
            policy=policy,
            audit=audit,
            alerts=BusAlerts(bus, closing=closing),
            resolver=build_resolver(self._config.schemapin, self._http),
            approvals=KvApprovalStore(
                await runtime.js.key_value(approvals_name), runtime.js, approvals_name
            ),
        )
        self._gateway = gateway
        ready = asyncio.Event()
        runtime.spawn(self._run_gateway(gateway, ready), name="mcp-gateway")
        await ready.wait()

        runtime.spawn(pins.follow(self._on_foreign_pin_change), name="mcp-pin-follower")
        registered = asyncio.Event()
        runtime.spawn(
            registry.follow(self._on_server_stored, self._on_server_removed, ready=registered),
            name="mcp-server-registry",
        )
        # Servers registered at run time are served again before the process reports SERVING.
        try:
            async with asyncio.timeout(_STARTUP_CONNECT_S):
                await registered.wait()
        except TimeoutError:
            logger.warning("the server registry was not read in %.0f s", _STARTUP_CONNECT_S)
        await self._connect(gateway, [info.name for info in gateway.servers()])
        self._serve_bus(runtime, ToolResponders(gateway), section.bus_responders)
        if section.endpoint.enabled:
            self.endpoint_url = self._start_endpoint(runtime, gateway)
        self._servicer.attach(
            GatewayContext(
                gateway=gateway,
                config=self._config,
                registry=registry,
                signer=bus.keys,
                tokens=section.agent_tokens,
                audit=audit,
                endpoint_url=self.endpoint_url,
                runtime_stdio=section.runtime_stdio_servers,
            )
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    # ---- parts

    @staticmethod
    async def _run_gateway(gateway: ToolGateway, ready: asyncio.Event) -> None:
        # The gateway's task group (every upstream session) lives in this one task, entered
        # and left here; cancellation at shutdown closes the sessions and their processes.
        async with gateway:
            ready.set()
            await asyncio.Event().wait()

    def _serve_bus(self, runtime: Runtime, responders: ToolResponders, count: int) -> None:
        """The C4 responders: the shared subjects in the replicas' queue group (requests for
        topic ``platform``) and this replica's own subjects (requests encrypted to its
        principal: agents), each with ``count`` subscriptions for invocations."""
        bus = runtime.bus
        principal = bus.principal_id
        routes = (
            (shared_subject(INVOKE), shared_subject(LIST_TOOLS), RESPONDER_QUEUE, "shared"),
            (
                replica_subject(principal, INVOKE),
                replica_subject(principal, LIST_TOOLS),
                principal,
                "replica",
            ),
        )
        for invoke, list_tools, queue, label in routes:
            for index in range(count):
                runtime.spawn(
                    bus.serve(invoke, responders.invoke, queue=queue),
                    name=f"mcp-bus-{label}-invoke-{index}",
                )
            runtime.spawn(
                bus.serve(list_tools, responders.list_tools, queue=queue),
                name=f"mcp-bus-{label}-list-tools",
            )

    @staticmethod
    async def _connect(gateway: ToolGateway, names: list[str]) -> None:
        """Give servers a bounded head start to connect (and be verified)."""
        async with asyncio.TaskGroup() as group:
            for name in names:
                timeout = min(
                    gateway.server_info(name).config.connection_timeout_s, _STARTUP_CONNECT_S
                )
                group.create_task(gateway.wait_connected(name, timeout))
        for info in gateway.servers():
            if not info.connected:
                logger.warning(
                    "server %s is not connected yet (%s); it keeps retrying",
                    info.name,
                    info.last_error or info.state.value,
                )

    def _start_endpoint(self, runtime: Runtime, gateway: ToolGateway) -> str:
        section = self._settings.mcp.endpoint
        server = EndpointServer(
            host=section.host, port=endpoint_port(self._settings), grace_s=section.shutdown_grace_s
        )
        url = _endpoint_url(section, server.port)
        allowed = list(section.allowed_hosts)
        netloc = urlsplit(url).netloc
        if netloc:
            allowed.append(netloc)
        authenticator = KeyringTokenAuthenticator(
            runtime.bus.keyring,
            max_ttl_s=self._settings.mcp.agent_tokens.max_ttl_s,
            clock_skew_s=self._settings.mcp.agent_tokens.clock_skew_s,
        )
        front = GatewayMcpEndpoint(gateway, authenticator)
        app = front.asgi_app(
            base_url=url.removesuffix(section.path) or url,
            path=section.path,
            allowed_hosts=allowed,
            max_sessions=section.max_sessions,
        )
        runtime.spawn(server.serve(app), name="mcp-endpoint")
        logger.info("MCP endpoint for agents: %s", url)
        sys.stdout.write(f"{ENDPOINT_LINE_PREFIX} url={url}\n")
        sys.stdout.flush()
        return url

    def _on_foreign_pin_change(self, tool_id: str) -> None:
        if self._gateway is not None:
            self._gateway.request_refresh(tool_id.split("/", 1)[0])

    async def _on_server_stored(self, config: McpServerConfig) -> None:
        gateway = self._gateway
        if gateway is None:
            return
        if self._config.server(config.name) is not None:
            logger.warning(
                "ignoring stored server %s: the [mcp] configuration defines it", config.name
            )
            return
        try:
            await gateway.register_server(config, wait=False)
        except AlreadyExists:
            logger.info("server %s changed in the registry; restarting its session", config.name)
            await gateway.remove_server(config.name)
            await gateway.register_server(config, wait=False)

    async def _on_server_removed(self, name: str) -> None:
        gateway = self._gateway
        if gateway is None or self._config.server(name) is not None:
            return
        with contextlib.suppress(NotFound):
            await gateway.remove_server(name)


def build(settings: McpGatewaySettings) -> McpGatewayService:
    return McpGatewayService(settings)
