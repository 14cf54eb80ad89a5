"""MCP gateway overhead per tool call, against calling the same server directly.

The server is a small MCPServer (one ``echo`` tool, SchemaPin-signed) run as a separate
process, over stdio and over streamable HTTP. For each transport the same run measures:

- direct:   ``mcp.Client.call_tool`` to the server;
- gateway:  ``ToolGateway.invoke`` in process — tool lookup (strict mode, verified tool),
  argument size and JSON Schema check, policy port (an in-process allow-all), the call on the
  gateway's pooled session, result size check and hashing, audit port (an in-memory sink);
- endpoint: (HTTP only, informational) an agent calling through the gateway's own MCP
  endpoint over HTTP, i.e. one more HTTP hop.
- service:  (informational, ``--no-service`` skips it) the gateway as the platform runs it:
  ``python -m symbi_mcp_gateway`` against a real NATS server and the real policy service,
  called over gRPC (``InvokeTool``) — every call asks the policy service over the secure bus
  and publishes its signed audit event to JetStream (fsync on every write) before answering —
  against the same HTTP server called directly.

Over stdio, "direct" uses the very mcp ``Client`` under the gateway's pooled session (same
pipes, same server process), so the difference is the gateway and nothing else; over HTTP it
is a second client of the same server process. Calls alternate between the paths so drift
hits both alike; the overhead is the median of the paired differences (gateway call i −
direct call i). A last measurement runs the gateway over a session that answers at once: the
cost of the checks alone.

Usage: ``uv run python bench/mcp.py [--calls N] [--no-service]``. The last line is
``mcp overhead_p50_ms: <x>`` (stdio, in process; the target is < 3 ms).
"""

# ruff: noqa: E402 — the path fix below must run before `mcp` is imported.
from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/mcp.py: run as a script, its folder is sys.path[0] and it would shadow the
# `mcp` package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar

import httpx
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from schemapin import KeyManager, create_well_known_response

from symbi_mcp_gateway import (
    AuditEvent,
    DirectoryResolver,
    GatewayConfig,
    GatewayMcpEndpoint,
    McpServerConfig,
    MemoryPinStore,
    PolicyDecision,
    SecurityAlert,
    StaticTokenAuthenticator,
    ToolCallAuthorization,
    ToolGateway,
    ToolStatus,
    open_mcp_session,
)

DOMAIN = "bench.local"

SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from mcp.server.mcpserver import MCPServer
    from symbi_mcp_gateway import SIGNATURE_META_KEY, sign_tool_document, tool_document

    server = MCPServer("bench", log_level="WARNING")

    @server.tool(description="Echo the text back")
    def echo(text: str) -> str:
        return text

    async def sign() -> None:
        key = open(os.environ["BENCH_KEY"]).read()
        for listed in await server.list_tools():
            wire = listed.model_dump(by_alias=True, mode="json", exclude_none=True)
            server._tool_manager.get_tool(listed.name).meta = {
                SIGNATURE_META_KEY: sign_tool_document(tool_document(wire), key)
            }

    asyncio.run(sign())
    if len(sys.argv) > 1:
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
    else:
        server.run()
    """
)


class AllowAll:
    async def authorize(self, request: ToolCallAuthorization) -> PolicyDecision:
        return PolicyDecision.allow()

    async def authorize_many(
        self, requests: Sequence[ToolCallAuthorization]
    ) -> list[PolicyDecision]:
        return [PolicyDecision.allow() for _ in requests]


class MemorySink:
    def __init__(self) -> None:
        self.count = 0

    async def emit(self, event: AuditEvent) -> None:
        self.count += 1

    async def raise_alert(self, alert: SecurityAlert) -> None:
        self.count += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def http_server(script: Path, env: dict[str, str]) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(port), env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while True:
        if server.started:
            break
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the gateway endpoint did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


class NoopSession:
    """A session that answers at once: what is left is the gateway's own work per call."""

    TOOL: ClassVar[dict[str, Any]] = {
        "name": "echo",
        "description": "Echo the text back",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    }

    async def list_tools(self, *, timeout_s: float) -> list[dict[str, Any]]:
        return [self.TOOL]

    async def call_tool(self, name: str, arguments: Any, *, timeout_s: float) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": arguments["text"]}], "isError": False}


@contextlib.asynccontextmanager
async def noop_opener(config: McpServerConfig, on_fault: Any) -> AsyncIterator[NoopSession]:
    yield NoopSession()


async def checks_only(calls: int) -> float:
    """Median µs of ToolGateway.invoke over a session that costs nothing."""
    sink = MemorySink()
    gateway = ToolGateway(
        GatewayConfig(),
        pins=MemoryPinStore(),
        policy=AllowAll(),
        audit=sink,
        alerts=sink,
        resolver=DirectoryResolver(Path(tempfile.gettempdir())),
        opener=noop_opener,
    )
    args = {"text": "hello, gateway"}
    async with gateway:
        await gateway.register_server(
            McpServerConfig(name="noop", command="none", trust_mode="development")
        )
        samples = (
            await measure(
                {"gateway": lambda: gateway.invoke("bench", "noop", "echo", args)}, calls, 200
            )
        )["gateway"]
    return statistics.median(samples) * 1000


SERVICE_POLICY = (
    'permit(principal == Symbi::Agent::"agent-bench", action == Symbi::Action::"tool_call", '
    "resource);"
)


async def service_overhead(script: Path, env: dict[str, str], root: Path, calls: int) -> None:
    """gRPC InvokeTool through the gateway process (real NATS, real policy service) against
    a direct call to the same HTTP server."""
    import grpc  # noqa: F401  (the generated stubs need it loaded)
    import nats as nats_py

    from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
    from symbi.mcp_gateway.v1 import mcp_gateway_pb2_grpc as pb_grpc
    from symbi.policy.v1 import policy_pb2
    from symbi_common.bus import BusEndpoint
    from symbi_common.grpc import open_channel
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
    from symbi_testing.services import ServiceCluster

    nats_server = NatsServerProcess(NatsServerConfig(store_dir=root / "nats"))
    nats_server.start()
    cluster = ServiceCluster(root / "services", nats_server.url, nats_server.monitor_url)
    nc = None
    directory: asyncio.Task[None] | None = None
    try:
        async with http_server(script, env) as url:
            await cluster.start_serving("policy", instance="bench")
            nc = await nats_py.connect(nats_server.url)
            js = nc.jetstream()
            operator = await BusEndpoint.open(
                nc, js, cluster.authority.issue("svc-bench", "service")
            )
            directory = asyncio.create_task(operator.run())
            deadline = time.monotonic() + 30
            while operator.bus.groups.latest("platform") is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no platform group key")
                await asyncio.sleep(0.05)
            entities = policy_pb2.PutEntitiesRequest()
            entities.entities.add().uid.CopyFrom(
                policy_pb2.EntityRef(type="Agent", id="agent-bench")
            )
            for subject, message in (
                ("symbi.rpc.policy.put_entities", entities),
                (
                    "symbi.rpc.policy.put_policy",
                    policy_pb2.PutPolicyRequest(id="bench", source=SERVICE_POLICY),
                ),
            ):
                await operator.bus.request(subject, message, topic="platform", timeout=30)
            servers = [{"name": "http", "url": url, "domain": DOMAIN}]
            gateway = await cluster.start_serving(
                "mcp-gateway",
                instance="bench",
                env={
                    "SYMBI_MCP__SERVERS": json.dumps(servers),
                    "SYMBI_MCP__SCHEMAPIN__DISCOVERY_DIR": str(root),
                    "SYMBI_MCP__ENDPOINT__ENABLED": "false",
                    "SYMBI_LOG_LEVEL": "warning",
                },
            )
            assert gateway.grpc_address is not None
            args = {"text": "hello, gateway"}
            request = pb.InvokeToolRequest(
                agent_id="agent-bench", server="http", tool="echo", arguments_json=json.dumps(args)
            )
            async with (
                open_channel(gateway.grpc_address) as channel,
                Client(url, cache=None) as direct,
            ):
                stub: Any = pb_grpc.McpGatewayServiceStub(channel)
                tools = await stub.ListTools(pb.ListToolsRequest(server="http"))
                assert [t.name for t in tools.tools] == ["echo"], tools
                samples = await measure(
                    {
                        "direct": lambda: direct.call_tool("echo", args),
                        "gateway": lambda: stub.InvokeTool(request, timeout=10),
                    },
                    calls,
                    min(50, calls),
                )
                async with httpx.AsyncClient() as http:
                    text = (await http.get(f"http://{gateway.metrics_address}/metrics")).text
            report("service", samples)
            handled = _mean_ms(text, "grpc_server_handling_seconds", 'grpc_method="InvokeTool"')
            checked = _mean_ms(text, "symbi_mcp_tool_call_seconds", 'server="http"')
            print(
                f"service inside the gateway process, mean per call: InvokeTool handler "
                f"{handled:.3f} ms, of which the call path up to its audit (checks, policy on "
                f"the bus, the upstream call) {checked:.3f} ms; the rest is the durable audit "
                f"publish and the handler's conversions"
            )
    finally:
        if directory is not None:
            directory.cancel()
            await asyncio.gather(directory, return_exceptions=True)
        if nc is not None:
            await nc.close()
        cluster.stop_all()
        nats_server.stop()


def _mean_ms(metrics: str, name: str, selector: str) -> float:
    """The mean of a Prometheus histogram (``_sum / _count`` of the series matching)."""
    totals = {"sum": 0.0, "count": 0.0}
    for line in metrics.splitlines():
        for part in totals:
            if line.startswith(f"{name}_{part}{{") and selector in line:
                totals[part] += float(line.rsplit(" ", 1)[1])
    return totals["sum"] / totals["count"] * 1000 if totals["count"] else float("nan")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    paths: dict[str, Callable[[], Awaitable[Any]]], calls: int, warmup: int
) -> dict[str, list[float]]:
    for call in paths.values():
        for _ in range(warmup):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(calls):
        for name, call in paths.items():
            started = time.perf_counter()
            await call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def report(transport: str, samples: dict[str, list[float]]) -> float:
    """Print each path's percentiles; return the gateway's overhead: the median of the paired
    differences (gateway call i minus direct call i, run back to back)."""
    base = statistics.median(samples["direct"])
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(
            f"{transport:6} {name:9} p50 {p50:7.3f} ms  p90 {pct(values, 0.9):7.3f} ms  "
            f"p99 {pct(values, 0.99):7.3f} ms  ratio {p50 / base:5.2f}x"
        )
    paired = [g - d for g, d in zip(samples["gateway"], samples["direct"], strict=True)]
    overhead = statistics.median(paired)
    print(
        f"{transport:6} gateway overhead: p50 of paired differences {overhead:.3f} ms, "
        f"difference of p50s {statistics.median(samples['gateway']) - base:.3f} ms"
    )
    return overhead


async def main(calls: int, warmup: int, service: bool) -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        private, public = KeyManager.generate_keypair()
        (root / "key.pem").write_text(KeyManager.export_private_key_pem(private))
        discovery = create_well_known_response(KeyManager.export_public_key_pem(public), "Bench")
        (root / f"{DOMAIN}.json").write_text(json.dumps(discovery))
        script = root / "server.py"
        script.write_text(SERVER_SCRIPT)
        env = {**os.environ, "BENCH_KEY": str(root / "key.pem")}
        sink = MemorySink()
        upstream: dict[str, Client] = {}

        @contextlib.asynccontextmanager
        async def opener(config: McpServerConfig, on_fault: Any) -> AsyncIterator[Any]:
            async with open_mcp_session(config, on_fault) as session:
                # The mcp Client under the gateway's session: "direct" calls go through the
                # very same client, pipes and server process, so the difference is the gateway.
                upstream[config.name] = session._client  # type: ignore[attr-defined]
                yield session

        gateway = ToolGateway(
            GatewayConfig(),
            pins=MemoryPinStore(),
            policy=AllowAll(),
            audit=sink,
            alerts=sink,
            resolver=DirectoryResolver(root),
            opener=opener,
        )
        args = {"text": "hello, gateway"}
        async with gateway:
            info = await gateway.register_server(
                McpServerConfig(
                    name="stdio",
                    command=sys.executable,
                    args=(str(script),),
                    env=env,
                    domain=DOMAIN,
                )
            )
            assert info.connected, info.last_error
            assert gateway.tool("stdio", "echo").status is ToolStatus.VERIFIED
            direct = upstream["stdio"]
            stdio_samples = await measure(
                {
                    "direct": lambda: direct.call_tool("echo", args),
                    "gateway": lambda: gateway.invoke("bench", "stdio", "echo", args),
                },
                calls,
                warmup,
            )
            stdio_overhead = report("stdio", stdio_samples)

            async with http_server(script, env) as url:
                await gateway.register_server(McpServerConfig(name="http", url=url, domain=DOMAIN))
                assert gateway.tool("http", "echo").status is ToolStatus.VERIFIED
                endpoint = GatewayMcpEndpoint(gateway, StaticTokenAuthenticator({"t": "bench"}))
                async with (
                    serve_app(endpoint.asgi_app(base_url="http://127.0.0.1")) as front,
                    Client(url, cache=None) as direct,
                    create_mcp_http_client(headers={"Authorization": "Bearer t"}) as agent_http,
                    Client(
                        streamable_http_client(f"{front}/mcp", http_client=agent_http), cache=None
                    ) as agent,
                ):
                    http_samples = await measure(
                        {
                            "direct": lambda: direct.call_tool("echo", args),
                            "gateway": lambda: gateway.invoke("bench", "http", "echo", args),
                            "endpoint": lambda: agent.call_tool("http__echo", args),
                        },
                        max(calls // 2, 50),
                        warmup,
                    )
                report("http", http_samples)
        print(f"audit events recorded: {sink.count}")
        if service:
            await service_overhead(script, env, root, max(calls // 4, 100))
    print(
        f"gateway checks alone (no transport): p50 {await checks_only(max(calls, 1000)):.1f} us per call"
    )
    print(f"mcp overhead_p50_ms: {stdio_overhead:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--no-service",
        dest="service",
        action="store_false",
        help="Skip the measurement through the gateway process (NATS, policy service, gRPC).",
    )
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.warmup, options.service))
