"""The agent socket inside real containers: round trip, refusal, egress (runc and runsc)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import textwrap

import pytest

from symbi_sandbox.channel import ChannelServer
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.images import PYTHON_IMAGE
from symbi_sandbox.runner import RunnerConfig, SandboxRunner
from symbi_sandbox.task import TaskSpec
from symbi_sandbox.tiers import Tier

from .conftest import RUNTIMES

pytestmark = pytest.mark.docker

AGENT = textwrap.dedent(
    """
    import json, sys, urllib.request
    import symbi_agent

    out = {}
    with symbi_agent.connect() as channel:
        out["hello"] = channel.hello()
        out["sent"] = channel.send("agent-b", {"text": "ping"})
        out["received"] = channel.receive(timeout=10)
        out["tool"] = channel.call_tool("time.now", {"tz": "UTC"})
        try:
            channel.call_tool("forbidden.shell", {"cmd": "rm -rf /"})
            out["denied"] = None
        except symbi_agent.PermissionDenied as exc:
            out["denied"] = {"code": exc.code, "reason": exc.reason, "message": exc.message}
    if len(sys.argv) > 1:
        symbi_agent.start_egress_proxy()
        allowed, blocked = sys.argv[1], sys.argv[2]
        out["egress"] = urllib.request.urlopen(allowed, timeout=10).read().decode()
        try:
            urllib.request.urlopen(blocked, timeout=10)
            out["egress_denied"] = None
        except urllib.error.HTTPError as exc:
            out["egress_denied"] = [exc.code, exc.read().decode()]
    print(json.dumps(out))
    """
)


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


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_agent_socket_round_trip_refusal_and_egress(
    engine: DockerEngine,
    runner_config: RunnerConfig,
    channel_server: ChannelServer,
    backend,  # type: ignore[no-untyped-def]
    egress_policy,  # type: ignore[no-untyped-def]
    audit,  # type: ignore[no-untyped-def]
    tier: Tier,
) -> None:
    if tier is Tier.GVISOR:
        runsc = (await engine.info()).runtimes.get("runsc")
        if runsc is None or not any(a in ("--host-uds=open", "--host-uds=all") for a in runsc.args):
            pytest.skip(
                "runsc is registered without --host-uds=open, so gVisor tasks cannot reach the "
                "agent socket; scripts/ensure-host.sh must add it (docs/sandbox.md)"
            )
    web = await http_server(b"hello from outside")
    other = await http_server(b"must not be reached")
    web_port = web.sockets[0].getsockname()[1]
    other_port = other.sockets[0].getsockname()[1]
    egress_policy.allowed.add(("127.0.0.1", web_port))
    backend.deliver("agent-b", {"text": "pong"})
    config = dataclasses.replace(runner_config, default_tier=tier)
    task = TaskSpec(
        task_id="chat",
        agent_id="agent-a",
        image=PYTHON_IMAGE,
        command=(
            "python3",
            "/agent/main.py",
            f"http://127.0.0.1:{web_port}/",
            f"http://127.0.0.1:{other_port}/",
        ),
        code=AGENT.encode(),
        network=True,
    )
    async with web, other, SandboxRunner(engine, config, channels=channel_server) as runner:
        execution = await runner.start(task)
        result = await execution.wait()
    output = execution.output.text("stdout")
    assert result.succeeded, f"{result.reason}\n{execution.output.text()}"
    out = json.loads(output)
    assert out["hello"]["agent_id"] == "agent-a"
    assert out["hello"]["network"] is True
    assert out["sent"].startswith("m")
    assert out["received"]["payload"] == {"text": "pong"}
    assert out["tool"] == {"tool": "time.now", "arguments": {"tz": "UTC"}}
    assert out["denied"]["code"] == "PERMISSION_DENIED"
    assert "policy denies tool.call on forbidden.shell" in out["denied"]["message"]
    sent = next(c for c in backend.calls if c[0] == "send")
    assert sent[1].agent_id == "agent-a"  # the call ran under the agent's identity
    assert sent[2] == ("agent-b", {"text": "ping"})
    assert out["egress"] == "hello from outside"
    assert out["egress_denied"][0] == 403
    assert "not on the agent's allow-list" in out["egress_denied"][1]
    decisions = [(r.decision, r.details["destination"]) for r in audit.of("sandbox.egress")]
    assert ("allow", f"127.0.0.1:{web_port}") in decisions
    assert ("deny", f"127.0.0.1:{other_port}") in decisions
    closed = audit.of("sandbox.egress.closed")
    assert closed
    assert int(closed[0].details["bytes_in"]) > 0


async def test_egress_refused_when_network_not_granted(
    engine: DockerEngine,
    runner_config: RunnerConfig,
    channel_server: ChannelServer,
    egress_policy,  # type: ignore[no-untyped-def]
    audit,  # type: ignore[no-untyped-def]
) -> None:
    egress_policy.allowed.add(("127.0.0.1", 9))
    script = textwrap.dedent(
        """
        import symbi_agent
        try:
            symbi_agent.open_tunnel("127.0.0.1", 9)
        except symbi_agent.PermissionDenied as exc:
            print(exc.reason)
        """
    )
    config = dataclasses.replace(runner_config, default_tier=Tier.DOCKER)
    task = TaskSpec(
        task_id="offline",
        agent_id="agent-a",
        image=PYTHON_IMAGE,
        command=("python3", "/agent/main.py"),
        code=script.encode(),
    )
    async with SandboxRunner(engine, config, channels=channel_server) as runner:
        execution = await runner.start(task)
        result = await execution.wait()
    assert result.succeeded, execution.output.text()
    assert execution.output.text("stdout").strip() == "NETWORK_NOT_GRANTED"
    assert egress_policy.asked == []  # refused before policy was even asked
    assert [r.decision for r in audit.of("sandbox.egress")] == ["deny"]
