"""The agent channel against the real services: an agent in a container calls a real MCP tool
through the mcp-gateway process and stores and retrieves a memory in the context process, with
the policy service process deciding every call (its policies allow them)."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from symbi.common.v1 import common_pb2
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_common.grpc import open_channel
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .platform import SchedulerStandIn, start_node

pytestmark = pytest.mark.docker

MCP_SERVER_TIME = str(Path(sys.executable).parent / "mcp-server-time")

AGENT = textwrap.dedent(
    """
    import json, symbi_agent

    out = {}
    with symbi_agent.connect() as channel:
        out["tool"] = channel.call_tool("time/get_current_time", {"timezone": "UTC"})
        out["memory_id"] = channel.store_memory(
            "the sky over the sandbox is blue", metadata={"source": "observation"}
        )
        out["memories"] = channel.query_memory("sky sandbox blue", limit=3)
        try:
            channel.call_tool("time/convert_time", {"source_timezone": "UTC", "time": "12:00",
                                                    "target_timezone": "Europe/Paris"})
            out["denied"] = None
        except symbi_agent.ChannelError as exc:
            out["denied"] = {"code": exc.code, "message": exc.message}
    print(json.dumps(out))
    """
)

POLICIES = {
    "test/allow-all": "permit(principal, action, resource);",
    "test/no-convert": '@reason("agents here may only read the clock") '
    'forbid(principal, action == Symbi::Action::"tool_call", '
    'resource == Symbi::Tool::"time/convert_time");',
}


def gateway_env() -> dict[str, str]:
    """``mcp-server-time`` over stdio, unsigned: the permissive trust mode pins it."""
    server = {
        "name": "time",
        "command": MCP_SERVER_TIME,
        "trust_mode": "permissive",
        "domain": "time.example",
    }
    return {
        "SYMBI_MCP__SERVERS": json.dumps([server]),
        "SYMBI_MCP__ENDPOINT__PORT": "0",
        "SYMBI_MCP__SCHEMAPIN__DISCOVERY_TTL_S": "0",
        "SYMBI_MCP__SCHEMAPIN__WELL_KNOWN_URLS": "{}",
    }


async def test_agent_calls_a_real_tool_and_uses_real_memory_through_its_channel(
    scheduler: SchedulerStandIn, services: ServiceCluster, short_dir: Path, engine: DockerEngine
) -> None:
    name = f"r{uuid.uuid4().hex[:8]}"
    node, agent = f"node-{name}", f"agent-{name}"
    policy = await services.start_serving("policy", instance=name)
    assert policy.grpc_address is not None
    async with open_channel(policy.grpc_address) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        await stub.PutEntities(
            policy_pb2.PutEntitiesRequest(
                entities=[policy_pb2.Entity(uid=policy_pb2.EntityRef(type="Agent", id=agent))]
            ),
            timeout=10,
        )
        for policy_id, source in POLICIES.items():
            await stub.PutPolicy(
                policy_pb2.PutPolicyRequest(id=policy_id, source=source), timeout=10
            )
    await services.start_serving("mcp-gateway", instance=name, env=gateway_env())
    # The feature-hashing embedder, explicitly: instant start (the ONNX model takes seconds).
    await services.start_serving(
        "context", instance=name, env={"SYMBI_CONTEXT__EMBEDDING_KIND": "hashing"}
    )
    sandbox = await start_node(services, short_dir, name)

    await scheduler.assign(
        node,
        "real-c4",
        agent_id=agent,
        image="symbi/python",
        command=("python3", "/agent/main.py"),
        code=AGENT.encode(),
        tier=common_pb2.SANDBOX_TIER_DOCKER,
        timeout_s=90,
    )
    final = await scheduler.final("real-c4", timeout=120)
    assert sandbox.grpc_address is not None
    async with open_channel(sandbox.grpc_address) as channel:
        logs = sandbox_pb2_grpc.SandboxServiceStub(channel).Logs(
            sandbox_pb2.LogsRequest(task_id="real-c4")
        )
        output = {c.stream: c.data async for c in logs}
    assert scheduler.states("real-c4") == ["STARTED", "SUCCEEDED"], (final.reason, output)
    report = json.loads(output["stdout"])

    # The time server's own answer, through the gateway process (C4: sent by the node,
    # vouching for the agent; the gateway asked the policy service too).
    tool = report["tool"]
    assert tool["is_error"] is False, tool
    assert tool["structured_content"]["timezone"] == "UTC"
    clock = datetime.fromisoformat(tool["structured_content"]["datetime"])
    assert abs((clock - datetime.now(UTC)).total_seconds()) < 120
    assert tool["result_hash"].startswith("sha256:")
    # The policy service's forbid reached the agent as a refusal with its reason.
    assert report["denied"]["code"] == "PERMISSION_DENIED"
    assert "may only read the clock" in report["denied"]["message"]

    # Stored by the context process and found again by its retrieval.
    assert report["memory_id"]
    hits = {m["memory_id"]: m for m in report["memories"]}
    assert report["memory_id"] in hits, report["memories"]
    assert hits[report["memory_id"]]["content"] == "the sky over the sandbox is blue"
    assert hits[report["memory_id"]]["metadata"] == {"source": "observation"}

    # The node audited each call with the policy's decision (audit events are published
    # concurrently: they may arrive in any order).
    expected = {
        ("sandbox.channel.tool", "allow"),
        ("sandbox.channel.tool", "deny"),
        ("sandbox.channel.memory.store", "allow"),
        ("sandbox.channel.memory.query", "allow"),
    }

    def decisions() -> bool:
        found = {
            (e["event_type"], e["details"].get("decision", ""))
            for e in scheduler.audit
            if e["actor"] == node and e["agent_id"] == agent
        }
        assert expected <= found, found
        return True

    await eventually(decisions, timeout=30)
    # ... and the gateway audited the call it made to the time server, for the agent.
    await eventually(
        lambda: [
            e
            for e in scheduler.audit
            if e["event_type"] == "mcp.tool_call"
            and e["sender"] == f"svc-mcp-gateway-{name}"
            and e["agent_id"] == agent
            and e["details"].get("tool") == "get_current_time"
        ],
        timeout=15,
    )
    assert await engine.list_managed({LABEL_NODE: node}) == []
