"""Real MCP servers for the gateway's integration tests.

- :class:`SignedToolServer`: an ``mcp`` MCPServer over streamable HTTP on a port the kernel
  picks (uvicorn on port 0), serving its ``.well-known/schemapin.json`` and tools signed with
  schemapin; the test can rug-pull, tamper, re-sign and rotate its key while it runs.
- ``serve_asgi``: any ASGI app on loopback port 0 (the gateway's own MCP endpoint).
- ``open_gateway``: a :class:`ToolGateway` with the real session opener and resolvers.
- for the service-level tests (``test_service_*``): the gateway's environment, principals on
  the bus in the test process (``principals``, ``operator``), the audit events and alerts the
  gateway publishes (``bus_log``), and the real policy service with test policies
  (``policy_service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import nats
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy
from schemapin import KeyManager, create_well_known_response
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from symbi.bus.v1 import events_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2_grpc as pb_grpc
from symbi.policy.v1 import policy_pb2
from symbi_common.bus import BusEndpoint, ConsumerSpec, Received
from symbi_common.config import NatsSection
from symbi_common.errors import SymbiError
from symbi_common.grpc import error_from_rpc, open_channel
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.launcher import ServiceProcess
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
from symbi_testing.services import ServiceCluster

if TYPE_CHECKING:
    from ..conftest import RecordingAlerts, RecordingAudit, RulePolicy

SIGNED_DOMAIN = "signed-tools.test"


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    # Long-lived requests (a gateway's subscriptions/listen stream) must not hold up the stop.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
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


# ---- the gateway as a process (service-level tests)

MCP_SERVER_TIME = str(Path(sys.executable).parent / "mcp-server-time")
FAULTY_SERVER = Path(__file__).parent / "faulty_server.py"
GATEWAY_INSTANCE = "gw"
GATEWAY_PRINCIPAL = f"svc-mcp-gateway-{GATEWAY_INSTANCE}"

#: Agent alice may call every tool; bob may not call the clock (the forbid says why).
POLICIES = {
    "tools-alice": 'permit(principal == Symbi::Agent::"agent-alice", '
    'action == Symbi::Action::"tool_call", resource);',
    "tools-bob": 'permit(principal == Symbi::Agent::"agent-bob", '
    'action == Symbi::Action::"tool_call", resource);',
    "no-clock-for-bob": '@reason("bob may not read the clock") '
    'forbid(principal == Symbi::Agent::"agent-bob", action == Symbi::Action::"tool_call", '
    'resource == Symbi::Tool::"time/get_current_time");',
}


def time_server(**extra: Any) -> dict[str, Any]:
    """``mcp-server-time`` over stdio, unsigned: permissive mode pins its definitions."""
    return {
        "name": "time",
        "command": MCP_SERVER_TIME,
        "trust_mode": "permissive",
        "domain": "time.example",
        **extra,
    }


def gateway_env(
    servers: list[dict[str, Any]] | None = None,
    *,
    well_known_urls: dict[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    env = {
        "SYMBI_MCP__SERVERS": json.dumps(servers or []),
        "SYMBI_MCP__ENDPOINT__PORT": "0",
        "SYMBI_MCP__RECONNECT_INITIAL_S": "0.05",
        "SYMBI_MCP__RECONNECT_MAX_S": "0.5",
        "SYMBI_MCP__SCHEMAPIN__DISCOVERY_TTL_S": "0",
        "SYMBI_MCP__SCHEMAPIN__WELL_KNOWN_URLS": json.dumps(well_known_urls or {}),
        "SYMBI_MCP__BUS_RESPONDERS": "2",
    }
    env.update(extra)
    return env


def endpoint_url(process: ServiceProcess) -> str:
    """The MCP endpoint's URL from the gateway's ``SYMBI-MCP-ENDPOINT`` line."""
    for line in list(process.output_tail):
        if line.startswith("SYMBI-MCP-ENDPOINT "):
            return line.split("url=", 1)[1].strip()
    raise AssertionError("the gateway printed no SYMBI-MCP-ENDPOINT line")


@contextlib.asynccontextmanager
async def gateway_stub(process: ServiceProcess) -> AsyncIterator[Any]:
    assert process.grpc_address is not None
    async with open_channel(process.grpc_address) as channel:
        yield pb_grpc.McpGatewayServiceStub(channel)


async def rpc_error(call: Awaitable[Any]) -> SymbiError:
    """The SymbiError a failing gRPC call carries (fails the test when the call succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return error_from_rpc(exc)
    raise AssertionError("the call succeeded")


OpenPrincipal = Callable[[str, str], Awaitable[BusEndpoint]]


async def _bounded(what: str, step: Awaitable[Any], timeout_s: float = 10.0) -> None:
    """A cleanup step under a deadline: a hang fails the test naming the step."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        raise AssertionError(f"{what} did not finish in {timeout_s} s")
    task.result()


async def _stop(
    what: str,
    *tasks: asyncio.Task[Any],
    connection: NatsClient | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Cancel background tasks and wait until they are done.

    A consumer's cancellation can be lost inside nats-py's pull fetch (Python 3.11's
    ``asyncio.wait_for`` swallows a cancellation that races a message, and the consumer's task
    group cancels its stages only once), so when the tasks do not end, their NATS
    ``connection`` is closed under them, which ends every pending fetch.
    """
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=1.0)
    if pending and connection is not None:
        await connection.close()
        _, pending = await asyncio.wait(pending, timeout=timeout_s)
    if pending:
        raise AssertionError(f"{what} did not stop")


@pytest.fixture
async def principals(
    services: ServiceCluster, nats_server: NatsServerProcess
) -> AsyncIterator[OpenPrincipal]:
    """Open bus endpoints in the test process for principals of the test cluster's root."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_principal(principal: str, role: str) -> BusEndpoint:
            credentials = services.authority.issue(principal, role)
            nc = await nats.connect(nats_server.url, name=principal)
            stack.push_async_callback(_bounded, f"closing {principal}'s connection", nc.close())
            js = nc.jetstream()
            await Provisioner(js, NatsSection()).provision()
            endpoint = await BusEndpoint.open(nc, js, credentials)
            loop = asyncio.create_task(endpoint.run())

            stack.push_async_callback(_stop, f"{principal}'s key directory", loop, connection=nc)
            if role in ("service", "node"):
                await eventually(
                    lambda: endpoint.bus.groups.latest("platform") is not None,
                    timeout=20,
                    message=f"{principal} got the platform key",
                )
            return endpoint

        yield open_principal


@pytest.fixture
async def operator(principals: OpenPrincipal) -> BusEndpoint:
    """A platform service principal of the test: pushes policies, reads audit and alerts."""
    return await principals("svc-test-operator", "service")


class BusLog:
    """Every message on some subjects, decrypted and parsed (collected in the background)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []

    async def handle(self, received: Received) -> None:
        self.messages.append(received)

    def audit_events(self, event_type: str, **details: Any) -> list[dict[str, Any]]:
        """Audit events of a type whose details contain ``details`` (details as dicts)."""
        found = []
        for received in self.messages:
            if not received.subject.startswith("symbi.audit."):
                continue
            event = received.parse(events_pb2.AuditEvent)
            if event.event_type != event_type:
                continue
            data = json.loads(event.details_json or "{}")
            if all(data.get(key) == value for key, value in details.items()):
                found.append({**data, "_agent_id": event.agent_id, "_actor": event.actor})
        return found

    def alerts(self) -> list[mcp_gateway_pb2.SecurityAlert]:
        return [
            received.parse(mcp_gateway_pb2.SecurityAlert)
            for received in self.messages
            if received.subject == "symbi.alert.mcp"
        ]


@pytest.fixture
async def bus_log(operator: BusEndpoint) -> AsyncIterator[BusLog]:
    """The gateway's audit events and alerts, as the audit service and operators see them."""
    log = BusLog()
    consumers = [
        ConsumerSpec.subscription(
            "SYMBI_AUDIT", ("symbi.audit.>",), "test-audit", deliver_policy=DeliverPolicy.ALL
        ),
        ConsumerSpec.subscription(
            "SYMBI_EVENTS", ("symbi.alert.mcp",), "test-alerts", deliver_policy=DeliverPolicy.ALL
        ),
    ]
    tasks = [asyncio.create_task(operator.bus.consume(spec, log.handle)) for spec in consumers]
    try:
        yield log
    finally:
        await _stop("the bus log", *tasks, connection=operator.bus.nc)


async def policy_request(
    operator: BusEndpoint, method: str, message: Any, reply: type[Any], timeout_s: float = 10
) -> Any:
    received = await operator.bus.request(
        f"symbi.rpc.policy.{method}", message, topic="platform", timeout=timeout_s
    )
    return received.parse(reply)


@pytest.fixture
async def policy_service(services: ServiceCluster, operator: BusEndpoint) -> ServiceProcess:
    """The real policy service, with agents alice and bob and the :data:`POLICIES`."""
    process = await services.start_serving("policy", instance="p1")
    entities = policy_pb2.PutEntitiesRequest()
    for agent in ("agent-alice", "agent-bob"):
        entity = entities.entities.add()
        entity.uid.CopyFrom(policy_pb2.EntityRef(type="Agent", id=agent))

    async def entities_stored() -> bool:
        try:
            # Short attempts: the first requests may be sealed with a group key generation
            # the new service does not have yet (the topic rotates as it joins).
            await policy_request(
                operator, "put_entities", entities, policy_pb2.PutEntitiesResponse, timeout_s=1
            )
        except SymbiError as exc:
            raise AssertionError(exc.message) from None
        return True

    await eventually(entities_stored, timeout=20, message="the policy service answers")
    for policy_id, source in POLICIES.items():
        await policy_request(
            operator,
            "put_policy",
            policy_pb2.PutPolicyRequest(id=policy_id, source=source),
            policy_pb2.PutPolicyResponse,
        )
    return process
