"""The node's gRPC API on a real sandbox process: Run streams output then the result; Get,
Kill, Logs and NodeInfo; errors carry their status codes."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest

from symbi.common.v1 import common_pb2
from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_common.grpc import open_channel
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .platform import SchedulerStandIn, start_node

pytestmark = pytest.mark.docker


async def test_run_get_kill_logs_and_node_info(
    scheduler: SchedulerStandIn, services: ServiceCluster, short_dir: Path, engine: DockerEngine
) -> None:
    name = f"g{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    process = await start_node(services, short_dir, name, SYMBI_SANDBOX__LABELS='{"zone": "a"}')
    assert process.grpc_address is not None
    async with open_channel(process.grpc_address) as channel:
        stub = sandbox_pb2_grpc.SandboxServiceStub(channel)

        info = await stub.NodeInfo(sandbox_pb2.NodeInfoRequest(), timeout=10)
        assert info.node_id == node
        assert set(info.tiers) == {common_pb2.SANDBOX_TIER_DOCKER, common_pb2.SANDBOX_TIER_GVISOR}
        assert set(info.channel_tiers) == set(info.tiers)
        assert dict(info.labels) == {"zone": "a"}
        assert info.docker_version
        assert info.memory_total_mb >= info.memory_free_mb > 0

        # Run: started, the output as it comes (both streams), then finished.
        for tier in (common_pb2.SANDBOX_TIER_DOCKER, common_pb2.SANDBOX_TIER_GVISOR):
            events = [
                e
                async for e in stub.Run(
                    sandbox_pb2.RunRequest(
                        agent_id="agent-operator",
                        image="symbi/busybox",
                        command=["sh", "-c", "echo out; echo err >&2; exit 4"],
                        tier=tier,
                        without_channel=True,
                    ),
                    timeout=60,
                )
            ]
            kinds = [e.WhichOneof("event") for e in events]
            assert kinds[0] == "started"
            assert kinds[-1] == "finished"
            assert set(kinds[1:-1]) == {"log"}
            logs = {(e.log.stream, e.log.data) for e in events if e.HasField("log")}
            assert logs == {("stdout", b"out\n"), ("stderr", b"err\n")}
            finished = events[-1].finished
            assert finished.state == sandbox_pb2.EXECUTION_STATE_EXITED
            assert finished.exit_code == 4
            assert finished.tier == tier
            assert finished.node_id == node
            got = await stub.Get(sandbox_pb2.GetRequest(task_id=finished.task_id), timeout=10)
            assert (got.state, got.exit_code) == (finished.state, 4)

        # Kill a running task; Logs follows it until it ends.
        run = stub.Run(
            sandbox_pb2.RunRequest(
                task_id=f"sleeper-{name}",
                agent_id="agent-operator",
                image="symbi/busybox",
                command=["sh", "-c", "echo up; exec sleep 300"],
                tier=common_pb2.SANDBOX_TIER_GVISOR,
                without_channel=True,
            ),
            timeout=120,
        )
        first = await run.read()
        assert first.started.state == sandbox_pb2.EXECUTION_STATE_RUNNING
        follow = stub.Logs(sandbox_pb2.LogsRequest(task_id=f"sleeper-{name}", follow=True))
        assert (await follow.read()).data == b"up\n"
        killed = await stub.Kill(
            sandbox_pb2.KillRequest(task_id=f"sleeper-{name}", grace_ms=100), timeout=30
        )
        assert killed.state == sandbox_pb2.EXECUTION_STATE_KILLED
        assert killed.reason == "killed on request"
        assert await follow.read() == grpc.aio.EOF  # the output ended with the task
        rest = [e async for e in run]
        assert rest[-1].finished.state == sandbox_pb2.EXECUTION_STATE_KILLED

        # A caller that goes away stops its task (it has no owner left).
        abandoned = stub.Run(
            sandbox_pb2.RunRequest(
                task_id=f"abandoned-{name}",
                agent_id="agent-operator",
                image="symbi/busybox",
                command=["sleep", "300"],
                tier=common_pb2.SANDBOX_TIER_DOCKER,
                without_channel=True,
            )
        )
        await abandoned.read()
        abandoned.cancel()

        async def ended() -> bool:
            got = await stub.Get(sandbox_pb2.GetRequest(task_id=f"abandoned-{name}"), timeout=5)
            return got.state == sandbox_pb2.EXECUTION_STATE_KILLED

        await eventually(ended, timeout=20)

        # Errors keep their codes.
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.Get(sandbox_pb2.GetRequest(task_id="nope"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            async for _ in stub.Run(
                sandbox_pb2.RunRequest(agent_id="agent-x", image="NOT AN IMAGE"), timeout=10
            ):
                pass
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as absent:
            async for _ in stub.Run(
                sandbox_pb2.RunRequest(agent_id="agent-x", image="symbi/absent"), timeout=10
            ):
                pass
        assert absent.value.code() == grpc.StatusCode.NOT_FOUND
    assert await engine.list_managed({LABEL_NODE: node}) == []
