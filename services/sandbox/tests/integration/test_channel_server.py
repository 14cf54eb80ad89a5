"""The channel server on a real Unix socket, driven by the agent SDK (no containers)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from symbi_sandbox.agent_sdk import symbi_agent
from symbi_sandbox.channel import ChannelConfig, ChannelServer, EgressConfig
from symbi_sandbox.channel.server import ChannelEndpoint
from symbi_sandbox.task import TaskSpec


def make_task(network: bool = False) -> TaskSpec:
    return TaskSpec(task_id="t1", agent_id="agent-a", image="symbi/python", network=network)


@pytest.fixture
async def endpoint(
    channel_server: ChannelServer, work_root: Path
) -> AsyncIterator[ChannelEndpoint]:
    opened = await channel_server.open(make_task(), work_root)
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_every_operation_round_trips(endpoint: ChannelEndpoint, backend) -> None:  # type: ignore[no-untyped-def]
    backend.deliver("agent-b", {"n": 1})
    path = str(endpoint.path)

    def agent() -> dict[str, object]:
        with symbi_agent.connect(path, timeout=10) as channel:
            out: dict[str, object] = {"hello": channel.hello()}
            out["received"] = channel.receive(timeout=5)
            out["nothing"] = channel.receive(timeout=0.05)
            with channel.subscribe("news") as sub:
                channel.publish("news", {"headline": "x"})
                out["event"] = sub.get(timeout=5)
            out["reply"] = channel.request("agent-b", {"q": 1}, timeout=5)
            out["tool"] = channel.call_tool("calc", {"a": 1})
            out["memory_id"] = channel.store_memory("the sky is blue", metadata={"k": "v"})
            out["hits"] = channel.query_memory("blue sky", limit=2)
            for name, call in {
                "send": lambda: channel.send("forbidden-agent", {}),
                "subscribe": lambda: channel.subscribe("forbidden-topic"),
            }.items():
                try:
                    call()
                    out[f"denied_{name}"] = None
                except symbi_agent.PermissionDenied as exc:
                    out[f"denied_{name}"] = exc.reason
            return out

    out = await asyncio.to_thread(agent)
    assert out["hello"] == {
        "protocol": 1,
        "task_id": "t1",
        "agent_id": "agent-a",
        "node_id": endpoint.context.node_id,
        "network": False,
        "max_frame_bytes": 1024 * 1024,
    }
    assert out["received"]["payload"] == {"n": 1}  # type: ignore[index]
    assert out["nothing"] is None
    assert out["event"]["payload"] == {"headline": "x"}  # type: ignore[index]
    assert out["event"]["topic"] == "news"  # type: ignore[index]
    assert out["reply"] == {"echo": {"q": 1}, "from": "agent-b"}
    assert out["tool"] == {"tool": "calc", "arguments": {"a": 1}}
    assert out["memory_id"] == "mem1"
    assert [h["content"] for h in out["hits"]] == ["the sky is blue"]  # type: ignore[attr-defined]
    assert out["denied_send"] == "POLICY_DENY"
    assert out["denied_subscribe"] == "POLICY_DENY"
    assert all(ctx.agent_id == "agent-a" and ctx.task_id == "t1" for _, ctx, _ in backend.calls)


def raw_call(path: str, payload: bytes) -> tuple[dict[str, object] | None, socket.socket]:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(payload)
    return symbi_agent._read_frame(sock), sock


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def test_malformed_frames_are_answered_and_the_connection_survives(
    endpoint: ChannelEndpoint,
) -> None:
    def agent() -> list[dict[str, object] | None]:
        answer, sock = raw_call(str(endpoint.path), frame(b"{not json"))
        with sock:
            sock.sendall(frame(b'{"id": 2, "op": "launch_missiles"}'))
            unknown = symbi_agent._read_frame(sock)
            sock.sendall(frame(b'{"id": 3, "op": "send", "to": 5}'))
            bad_arg = symbi_agent._read_frame(sock)
            sock.sendall(frame(b'{"id": 4, "op": "hello"}'))
            hello = symbi_agent._read_frame(sock)
        return [answer, unknown, bad_arg, hello]

    malformed, unknown, bad_arg, hello = await asyncio.to_thread(agent)
    assert malformed is not None
    assert malformed["error"]["reason"] == "MALFORMED_FRAME"  # type: ignore[index]
    assert unknown is not None
    assert unknown["id"] == 2
    assert unknown["error"]["reason"] == "UNKNOWN_OPERATION"  # type: ignore[index]
    assert bad_arg is not None
    assert bad_arg["error"]["code"] == "INVALID_ARGUMENT"  # type: ignore[index]
    assert "to must be a non-empty string" in bad_arg["error"]["message"]  # type: ignore[index]
    assert hello is not None
    assert hello["ok"] is True


async def test_oversized_frame_closes_the_connection(endpoint: ChannelEndpoint) -> None:
    def agent() -> tuple[dict[str, object] | None, bytes]:
        answer, sock = raw_call(str(endpoint.path), struct.pack(">I", 50 * 1024 * 1024))
        with sock:
            return answer, sock.recv(10)

    answer, rest = await asyncio.to_thread(agent)
    assert answer is not None
    assert answer["error"]["reason"] == "FRAME_TOO_LARGE"  # type: ignore[index]
    assert rest == b""


async def test_rate_limit_refuses_with_a_reason(
    backend,
    egress_policy,
    audit,
    work_root: Path,  # type: ignore[no-untyped-def]
) -> None:
    server = ChannelServer(
        backend,
        egress_policy=egress_policy,
        audit=audit,
        node_id="n1",
        config=ChannelConfig(rate_per_s=0.001, burst=3),
    )
    endpoint = await server.open(make_task(), work_root)

    def agent() -> list[str]:
        outcomes = []
        with symbi_agent.connect(str(endpoint.path), timeout=5) as channel:
            for _ in range(5):
                try:
                    channel.hello()
                    outcomes.append("ok")
                except symbi_agent.ChannelError as exc:
                    outcomes.append(exc.reason)
        return outcomes

    try:
        assert await asyncio.to_thread(agent) == ["ok"] * 3 + ["RATE_LIMITED"] * 2
    finally:
        await server.aclose()
    assert endpoint.refused == 2


async def test_slow_backend_call_hits_the_deadline(
    backend,
    egress_policy,
    audit,
    work_root: Path,  # type: ignore[no-untyped-def]
) -> None:
    server = ChannelServer(
        backend,
        egress_policy=egress_policy,
        audit=audit,
        node_id="n1",
        config=ChannelConfig(call_timeout_s=0.2, max_wait_s=0.5),
    )
    endpoint = await server.open(make_task(), work_root)

    def agent() -> str:
        with symbi_agent.connect(str(endpoint.path), timeout=5) as channel:
            try:
                channel.request("slow", {}, timeout=0.1)
            except symbi_agent.ChannelError as exc:
                return exc.code
        return "no error"

    try:
        assert await asyncio.to_thread(agent) == "DEADLINE_EXCEEDED"
    finally:
        await server.aclose()


async def test_egress_to_node_local_addresses_is_blocked_by_default(
    backend,
    egress_policy,
    audit,
    work_root: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Policy allows the name, but it resolves to loopback: the node's own services.
    egress_policy.allowed.add(("localhost", 4222))
    server = ChannelServer(
        backend,
        egress_policy=egress_policy,
        audit=audit,
        node_id="n1",
        config=ChannelConfig(egress=EgressConfig()),
    )
    endpoint = await server.open(make_task(network=True), work_root)

    def agent() -> tuple[str, str]:
        try:
            symbi_agent.open_tunnel("localhost", 4222, str(endpoint.path))
        except symbi_agent.PermissionDenied as exc:
            return exc.reason, exc.message
        return "connected", ""

    try:
        reason, message = await asyncio.to_thread(agent)
    finally:
        await server.aclose()
    assert reason == "EGRESS_BLOCKED"
    assert "node-local or private" in message
    assert [r.decision for r in audit.of("sandbox.egress")] == ["deny"]


async def test_closing_the_endpoint_ends_connections_and_removes_the_socket(
    channel_server: ChannelServer, work_root: Path
) -> None:
    endpoint = await channel_server.open(make_task(), work_root)
    channel = await asyncio.to_thread(symbi_agent.connect, str(endpoint.path), timeout=5)
    try:
        assert (await asyncio.to_thread(channel.hello))["task_id"] == "t1"
        await endpoint.aclose()
        with pytest.raises(symbi_agent.ChannelError) as caught:
            await asyncio.to_thread(channel.hello)
        assert caught.value.code == "UNAVAILABLE"
        assert not endpoint.path.exists()
    finally:
        await asyncio.to_thread(channel.close)


async def test_messages_right_after_subscribing_are_not_lost(
    endpoint: ChannelEndpoint,
    backend,  # type: ignore[no-untyped-def]
) -> None:
    from symbi_sandbox.channel import AgentMessage

    queue = backend.topics.setdefault("burst", asyncio.Queue())
    for i in range(200):
        queue.put_nowait(AgentMessage(f"m{i}", "agent-b", i, topic="burst"))

    def agent() -> list[object]:
        with symbi_agent.connect(str(endpoint.path), timeout=10) as channel:
            sub = channel.subscribe("burst")
            return [sub.get(timeout=5)["payload"] for _ in range(200)]  # type: ignore[index]

    assert await asyncio.to_thread(agent) == list(range(200))
