"""The agent channel of a real sandbox process: the agent speaks on the bus as itself, and a
real policy service decides every call (runc and runsc)."""

from __future__ import annotations

import asyncio
import json
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from google.protobuf.message import Message

from symbi.common.v1 import common_pb2
from symbi.context.v1 import context_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_common.bus import BusEndpoint, ConsumerSpec, Received
from symbi_common.grpc import open_channel
from symbi_common.jetstream.server import NatsServerProcess
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .platform import SchedulerStandIn, start_node

pytestmark = pytest.mark.docker

AGENT = textwrap.dedent(
    """
    import json, os, urllib.error, urllib.request, symbi_agent

    peer = os.environ["PEER"]
    out = {}
    with symbi_agent.connect() as channel:
        out["hello"] = channel.hello()
        out["sent"] = channel.send(peer, {"text": "ping", "tier": os.environ["TIER"]})
        out["reply"] = channel.receive(timeout=30)
        with channel.subscribe("public") as subscription:
            channel.publish("public", {"news": os.environ["TIER"]})
            out["event"] = subscription.get(timeout=30)
        for name, call in (
            ("denied_send", lambda: channel.send("agent-forbidden", {"x": 1})),
            ("denied_tool", lambda: channel.call_tool("shell/exec", {"cmd": "id"})),
            ("denied_publish", lambda: channel.publish("secret", {"x": 1})),
        ):
            try:
                call()
                out[name] = None
            except symbi_agent.ChannelError as exc:
                out[name] = {"code": exc.code, "reason": exc.reason, "message": exc.message}
        out["tool"] = channel.call_tool("time/now", {"tz": "UTC"})
        out["memory_id"] = channel.store_memory(
            "the sky is blue", tags=["colour", "dsl-guard:r1=true"], metadata={"n": 1}
        )
        out["memories"] = channel.query_memory("sky", limit=3)
        symbi_agent.start_egress_proxy()
        out["egress"] = urllib.request.urlopen(os.environ["ALLOWED_URL"], timeout=20).read().decode()
        try:
            urllib.request.urlopen(os.environ["FORBIDDEN_URL"], timeout=20)
            out["egress_denied"] = None
        except urllib.error.HTTPError as exc:
            out["egress_denied"] = [exc.code, exc.read().decode()]
        channel.send(peer, {"report": out})
    print(json.dumps(out))
    """
)


def policies(forbidden_port: int) -> dict[str, str]:
    return {
        "test/allow-all": "permit(principal, action, resource);",
        "test/forbid": textwrap.dedent(
            f"""
            @reason("agents may not message agent-forbidden")
            forbid(principal, action == Symbi::Action::"send_message",
                   resource == Symbi::Agent::"agent-forbidden");
            @reason("no shell tools for sandboxed agents")
            forbid(principal, action == Symbi::Action::"tool_call", resource)
            when {{ context has server && context.server == "shell" }};
            @reason("the secret topic is not for agents")
            forbid(principal, action == Symbi::Action::"publish",
                   resource == Symbi::Topic::"secret");
            @reason("port {forbidden_port} is off limits")
            forbid(principal, action == Symbi::Action::"network", resource)
            when {{ context has port && context.port == {forbidden_port} }};
            """
        ),
    }


async def http_server(body: bytes) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


class Peer:
    """Another principal on the bus (an agent of its own, outside any sandbox)."""

    def __init__(self, endpoint: BusEndpoint) -> None:
        self.endpoint = endpoint
        self.received: list[Received] = []
        self.topics: list[Received] = []

    async def on_topic(self, message: Received) -> None:
        self.topics.append(message)

    async def on_message(self, message: Received) -> None:
        self.received.append(message)
        body = json.loads(message.payload)
        if "text" in body:
            answer = json.dumps({"pong": body["tier"], "to": message.sender}).encode()
            await self.endpoint.bus.send(message.sender, answer, content_type="application/json")

    def from_(self, sender: str) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in self.received if m.sender == sender]


@pytest_asyncio.fixture
async def peer(
    nats_server: NatsServerProcess, services: ServiceCluster, scheduler: SchedulerStandIn
) -> AsyncIterator[Peer]:
    nc = await nats.connect(nats_server.url)
    endpoint = await BusEndpoint.open(
        nc, nc.jetstream(), services.authority.issue("agent-peer", "agent"), manage_topics=()
    )
    peer = Peer(endpoint)
    tasks = [
        asyncio.create_task(endpoint.run()),
        asyncio.create_task(
            endpoint.bus.consume(ConsumerSpec.direct("agent-peer"), peer.on_message)
        ),
        asyncio.create_task(
            endpoint.bus.consume(
                ConsumerSpec.subscription(
                    "SYMBI_EVENTS", ("symbi.topic.agents.>",), "topics-agent-peer"
                ),
                peer.on_topic,
            )
        ),
    ]
    try:
        yield peer
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()


class ToolsAndMemory:
    """The gateway's and the context service's side of contract C4, served on the real bus
    by a service principal (their own services are tested in their own suites)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Message]] = []

    async def invoke(self, message: Received) -> mcp_gateway_pb2.InvokeToolResponse:
        request = message.parse(mcp_gateway_pb2.InvokeToolRequest)
        self.requests.append((message.sender, message.sender_role, request))
        response = mcp_gateway_pb2.InvokeToolResponse(text=[f"12:00 {request.arguments['tz']}"])
        response.structured_content.update({"agent": request.agent_id})
        return response

    async def store(self, message: Received) -> context_pb2.StoreContextResponse:
        request = message.parse(context_pb2.StoreContextRequest)
        self.requests.append((message.sender, message.sender_role, request))
        return context_pb2.StoreContextResponse(id=f"mem-{request.item.agent_id}")

    async def retrieve(self, message: Received) -> context_pb2.RetrieveContextResponse:
        request = message.parse(context_pb2.RetrieveContextRequest)
        self.requests.append((message.sender, message.sender_role, request))
        item = context_pb2.MemoryItem(
            id="mem-1", content="the sky is blue", type=context_pb2.MEMORY_TYPE_LONG_TERM
        )
        return context_pb2.RetrieveContextResponse(
            items=[context_pb2.ScoredMemory(item=item, score=0.9)]
        )


async def put_policies(address: str, agents: list[str], forbidden_port: int) -> None:
    async with open_channel(address) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        entities = [
            policy_pb2.Entity(uid=policy_pb2.EntityRef(type="Agent", id=agent))
            for agent in [*agents, "agent-peer", "agent-forbidden"]
        ]
        await stub.PutEntities(policy_pb2.PutEntitiesRequest(entities=entities), timeout=10)
        for policy_id, source in policies(forbidden_port).items():
            await stub.PutPolicy(
                policy_pb2.PutPolicyRequest(id=policy_id, source=source), timeout=10
            )


async def test_agent_speaks_as_itself_and_policy_refuses_what_it_forbids(
    scheduler: SchedulerStandIn,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
    peer: Peer,
) -> None:
    c4 = ToolsAndMemory()
    responders = [
        asyncio.create_task(scheduler.bus.serve(subject, handler, queue="c4"))
        for subject, handler in (
            ("symbi.rpc.mcp.invoke", c4.invoke),
            ("symbi.rpc.context.store", c4.store),
            ("symbi.rpc.context.retrieve", c4.retrieve),
        )
    ]
    policy = await services.start_serving("policy")
    name = f"c{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    sandbox = await start_node(services, short_dir, name)
    agents = {"runc": f"agent-{name}-runc", "runsc": f"agent-{name}-runsc"}
    assert policy.grpc_address is not None
    allowed, forbidden = await http_server(b"hello from outside"), await http_server(b"no")
    await put_policies(policy.grpc_address, list(agents.values()), port_of(forbidden))
    urls = {
        "ALLOWED_URL": f"http://127.0.0.1:{port_of(allowed)}/",
        "FORBIDDEN_URL": f"http://127.0.0.1:{port_of(forbidden)}/",
    }

    tiers = {"runc": common_pb2.SANDBOX_TIER_DOCKER, "runsc": common_pb2.SANDBOX_TIER_GVISOR}
    for runtime, agent in agents.items():
        await scheduler.assign(
            node,
            f"talk-{runtime}",
            agent_id=agent,
            image="symbi/python",
            command=("python3", "/agent/main.py"),
            code=AGENT.encode(),
            env={"PEER": "agent-peer", "TIER": runtime, **urls},
            tier=tiers[runtime],
            network=True,
        )
    for runtime, agent in agents.items():
        final = await scheduler.final(f"talk-{runtime}", timeout=90)
        assert scheduler.states(f"talk-{runtime}") == ["STARTED", "SUCCEEDED"], final.reason

        # The peer got the message signed by the agent itself (the bus verified the chain
        # root → the node's issuer → the agent), and the agent read the peer's answer.
        messages = await eventually(
            lambda agent=agent: len(peer.from_(agent)) >= 2 and peer.from_(agent), timeout=15
        )
        assert messages[0] == {"text": "ping", "tier": runtime}
        report = messages[1]["report"]
        assert isinstance(report, dict)
        assert report["hello"]["agent_id"] == agent
        assert report["reply"]["sender"] == "agent-peer"
        assert report["reply"]["payload"] == {"pong": runtime, "to": agent}
        assert report["denied_send"]["code"] == "PERMISSION_DENIED"
        assert "agent-forbidden" in report["denied_send"]["message"]
        assert report["denied_tool"]["code"] == "PERMISSION_DENIED"
        assert "no shell tools" in report["denied_tool"]["message"]
        assert report["denied_publish"]["code"] == "PERMISSION_DENIED"
        assert "secret topic" in report["denied_publish"]["message"]
        assert all(m.sender_role == "agent" for m in peer.received if m.sender == agent)
        # Publish/subscribe on agents.public, signed by the agent: it read its own news on
        # its subscription, and so did another member of the topic.
        assert report["event"]["sender"] == agent
        assert report["event"]["payload"] == {"news": runtime}
        await eventually(
            lambda agent=agent: any(
                m.sender == agent and m.envelope.topic == "agents.public" for m in peer.topics
            ),
            timeout=15,
        )
        # Tools and memory went out as the node, which vouches for the agent (C4); the
        # agent could not smuggle a DSL guard outcome into its memory's tags.
        assert report["tool"]["text"] == ["12:00 UTC"]
        assert report["tool"]["structured_content"] == {"agent": agent}
        assert report["memory_id"] == f"mem-{agent}"
        assert report["memories"][0]["content"] == "the sky is blue"
        mine = [
            (s, r, m)
            for s, r, m in c4.requests
            if getattr(m, "agent_id", "") == agent
            or (isinstance(m, context_pb2.StoreContextRequest) and m.item.agent_id == agent)
        ]
        assert {(sender, role) for sender, role, _ in mine} == {(node, "node")}
        stored = next(m for _, _, m in mine if isinstance(m, context_pb2.StoreContextRequest))
        assert list(stored.item.tags) == ["colour"]
        assert stored.item.task_id == f"talk-{runtime}"
        # Egress through the channel: the allowed destination answered; the one policy
        # forbids was refused before any connection, with the policy's reason.
        assert report["egress"] == "hello from outside"
        assert report["egress_denied"][0] == 403
        assert f"port {port_of(forbidden)} is off limits" in report["egress_denied"][1]

        # The output is on the node too (gRPC Logs of the finished task).
        assert sandbox.grpc_address is not None
        async with open_channel(sandbox.grpc_address) as channel:
            stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
            text = b"".join(
                [
                    c.data
                    async for c in stub.Logs(sandbox_pb2.LogsRequest(task_id=f"talk-{runtime}"))
                ]
            )
        assert json.loads(text)["reply"]["payload"]["pong"] == runtime

    # Every decision was audited by the node, allowed and denied alike.
    def decisions() -> set[tuple[str, str, str]]:
        found = {
            (e["event_type"], e["agent_id"], e["details"].get("decision", ""))
            for e in scheduler.audit
            if e["actor"] == node
            and e["event_type"].startswith(("sandbox.channel.", "sandbox.egress"))
        }
        assert ("sandbox.channel.send", agents["runsc"], "deny") in found, found
        return found

    found = await eventually(decisions, timeout=15)
    for agent in agents.values():
        assert {
            ("sandbox.channel.send", agent, "allow"),
            ("sandbox.channel.send", agent, "deny"),
            ("sandbox.channel.tool", agent, "deny"),
            ("sandbox.channel.receive", agent, ""),
            ("sandbox.channel.publish", agent, "allow"),
            ("sandbox.channel.publish", agent, "deny"),
            ("sandbox.channel.subscribe", agent, "allow"),
            ("sandbox.egress", agent, "allow"),
            ("sandbox.egress", agent, "deny"),
            ("sandbox.channel.tool", agent, "allow"),
            ("sandbox.channel.memory.store", agent, "allow"),
            ("sandbox.channel.memory.query", agent, "allow"),
        } <= found
    assert await engine.list_managed({LABEL_NODE: node}) == []
    for server in (allowed, forbidden):
        server.close()
    for responder in responders:
        responder.cancel()
    await asyncio.gather(*responders, return_exceptions=True)
