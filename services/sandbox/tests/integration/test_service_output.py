"""Task output on the bus: the sandbox process publishes TaskOutput on symbi.task.output.<task>."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.js import api as js_api

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi_common.bus import ConsumerSpec, Received
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .platform import SchedulerStandIn, start_node

pytestmark = pytest.mark.docker

Stream = events_pb2.TaskOutput.Stream
RUNC, RUNSC = common_pb2.SANDBOX_TIER_DOCKER, common_pb2.SANDBOX_TIER_GVISOR


class Follower:
    """Every task's output as a follower reads it from the OUTPUT stream (verified, decrypted)."""

    def __init__(self) -> None:
        self.messages: dict[str, list[events_pb2.TaskOutput]] = defaultdict(list)
        self.senders: set[tuple[str, str]] = set()

    async def on_output(self, received: Received) -> None:
        message = received.parse(events_pb2.TaskOutput)
        self.senders.add((received.sender, received.sender_role))
        self.messages[message.task_id].append(message)

    async def final(self, task_id: str, timeout: float = 60.0) -> list[events_pb2.TaskOutput]:
        def check() -> list[events_pb2.TaskOutput]:
            got = self.messages[task_id]
            assert got, f"{task_id}: no output yet"
            assert got[-1].final, f"{task_id}: {len(got)} messages, no final yet"
            return got

        return await eventually(check, timeout=timeout)


@pytest_asyncio.fixture
async def follower(scheduler: SchedulerStandIn) -> AsyncIterator[Follower]:
    follower = Follower()
    spec = ConsumerSpec.subscription(
        "SYMBI_OUTPUT",
        ("symbi.task.output.*",),
        f"test-output-{uuid.uuid4().hex[:6]}",
        deliver_policy=js_api.DeliverPolicy.ALL,
    )
    task = asyncio.create_task(scheduler.bus.consume(spec, follower.on_output))
    try:
        yield follower
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stdout_and_stderr_arrive_in_order_then_the_final_marker(
    scheduler: SchedulerStandIn,
    follower: Follower,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
) -> None:
    name = f"o{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    await start_node(services, short_dir, name)
    script = "echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2; echo out3"
    for task_id, tier in (("talk-runc", RUNC), ("talk-runsc", RUNSC)):
        order = await scheduler.assign(node, task_id, command=("sh", "-c", script), tier=tier)
        messages = await follower.final(task_id)
        assert [m.seq for m in messages] == list(range(len(messages)))
        pieces = [(m.stream, m.data) for m in messages if m.data]
        assert pieces == [
            (Stream.STREAM_STDOUT, b"out1\n"),
            (Stream.STREAM_STDERR, b"err1\n"),
            (Stream.STREAM_STDOUT, b"out2\nout3\n"),  # coalesced: written within the linger
        ], pieces
        final = messages[-1]
        assert (final.total_bytes, final.skipped_bytes, final.data) == (20, 0, b"")
        assert not any(m.truncated for m in messages)
        for m in messages:
            assert (m.task_id, m.agent_id, m.node_id, m.attempt, m.dispatch_id) == (
                task_id,
                "agent-test",
                node,
                1,
                order.dispatch_id,
            )
        assert (await scheduler.final(task_id)).state == events_pb2.TaskStatus.STATE_SUCCEEDED
    assert follower.senders == {(node, "node")}  # signed by the node, opened with the group key
    assert await engine.list_managed({LABEL_NODE: node}) == []


async def test_output_beyond_the_cap_is_cut_with_one_marker(
    scheduler: SchedulerStandIn,
    follower: Follower,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
) -> None:
    name = f"o{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    cap = 64 * 1024
    await start_node(services, short_dir, name, SYMBI_SANDBOX__OUTPUT_MAX_BYTES=str(cap))
    written = 2000 * 1001  # whole lines of 1001 bytes
    await scheduler.assign(
        node,
        "chatty",
        # Long lines: dockerd's log driver frames each line (the pump reads ~2000 frames here).
        command=("sh", "-c", f"yes $(printf '%01000d' 7) | head -c {written}; echo bye >&2"),
    )
    messages = await follower.final("chatty")
    data = b"".join(m.data for m in messages)
    assert len(data) == cap
    assert data.startswith(b"0" * 999 + b"7\n")
    assert all(len(m.data) <= 16 * 1024 for m in messages)
    markers = [m for m in messages if m.truncated]
    assert len(markers) == 1
    # Bounded by the cap, not by what was written (uncapped: 123 messages of 16 KiB): full
    # messages and a few cut early by the 100 ms linger while output starts, plus 2 markers.
    assert len(messages) <= 2 * (cap // (16 * 1024)) + 2, len(messages)
    final = messages[-1]
    assert final.final
    assert final.total_bytes == written + 4
    assert final.skipped_bytes == written + 4 - cap
    assert (await scheduler.final("chatty")).state == events_pb2.TaskStatus.STATE_SUCCEEDED
    assert await engine.list_managed({LABEL_NODE: node}) == []


async def symbi_output(*args: str, nats_url: str, keys_dir: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from symbi_cli.main import app; app()",
        "sandbox",
        "output",
        *args,
        "--nats-url",
        nats_url,
        "--keys-dir",
        str(keys_dir),
        "--as",
        "svc-cli-test",
        env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_follows_a_task_s_output_from_the_bus(
    scheduler: SchedulerStandIn,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
) -> None:
    services.authority.issue("svc-cli-test", "service")
    url, keys = services.nats_url, services.keys_dir
    # Joining the platform topic: the services seal its key to the CLI's principal.
    code, _, err = await symbi_output("never-ran", nats_url=url, keys_dir=keys)
    assert code == 1, err
    assert "no output of task never-ran" in err

    name = f"o{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    await start_node(services, short_dir, name)
    follow = asyncio.create_task(symbi_output("cli-task", "--follow", nats_url=url, keys_dir=keys))
    await scheduler.assign(
        node, "cli-task", command=("sh", "-c", "echo to stdout; sleep 0.3; echo to stderr >&2")
    )
    code, out, err = await follow
    assert code == 0, err
    assert out == "to stdout\n"
    assert "to stderr\n" in err
    assert "end of output: 20 bytes written, 0 not published" in err

    # After the task, without --follow: the same replay from the stream.
    code, out, err = await symbi_output("cli-task", nats_url=url, keys_dir=keys)
    assert code == 0, err
    assert out == "to stdout\n"
    assert await engine.list_managed({LABEL_NODE: node}) == []


async def test_every_byte_of_short_lines_and_partial_lines_through_run_and_the_bus(
    scheduler: SchedulerStandIn,
    follower: Follower,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
) -> None:
    from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
    from symbi_common.grpc import open_channel

    from .test_output_complete import PARTIAL, SHORT_LINES, SHORT_LINES_STDOUT

    name = f"o{uuid.uuid4().hex[:8]}"
    node = f"node-{name}"
    process = await start_node(
        services, short_dir, name, SYMBI_SANDBOX__OUTPUT_MAX_BYTES=str(4 * 1024 * 1024)
    )
    assert process.grpc_address is not None
    cases = [("short-lines", SHORT_LINES, SHORT_LINES_STDOUT, b"end")]
    cases += [(f"partial-{n}", s, out, err) for n, (s, (out, err)) in enumerate(PARTIAL.items())]
    async with open_channel(process.grpc_address) as channel:
        stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
        for tier, label in ((RUNC, "runc"), (RUNSC, "runsc")):
            for case, script, stdout, stderr in cases:
                task_id = f"{case}-{label}-{name}"
                events = [
                    e
                    async for e in stub.Run(
                        sandbox_pb2.RunRequest(
                            task_id=task_id,
                            agent_id="agent-operator",
                            image="symbi/busybox",
                            command=["sh", "-c", script],
                            tier=tier,
                            without_channel=True,
                        ),
                        timeout=120,
                    )
                ]
                assert events[-1].finished.state == sandbox_pb2.EXECUTION_STATE_EXITED
                logs = [e.log for e in events if e.HasField("log")]
                assert "gap" not in {c.stream for c in logs}
                grpc_out = b"".join(c.data for c in logs if c.stream == "stdout")
                grpc_err = b"".join(c.data for c in logs if c.stream == "stderr")
                assert (len(grpc_out), len(grpc_err)) == (len(stdout), len(stderr)), task_id
                assert (grpc_out, grpc_err) == (stdout, stderr), task_id

                messages = await follower.final(task_id)
                bus_out = b"".join(m.data for m in messages if m.stream == Stream.STREAM_STDOUT)
                bus_err = b"".join(m.data for m in messages if m.stream == Stream.STREAM_STDERR)
                assert (len(bus_out), len(bus_err)) == (len(stdout), len(stderr)), task_id
                assert (bus_out, bus_err) == (stdout, stderr), task_id
                final = messages[-1]
                assert (final.total_bytes, final.skipped_bytes) == (len(stdout) + len(stderr), 0)
                assert not any(m.truncated for m in messages)
    assert await engine.list_managed({LABEL_NODE: node}) == []
