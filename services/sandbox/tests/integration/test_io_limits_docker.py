"""I/O limits on real containers: egress bandwidth through the channel's proxy (runc and
runsc) and block-device throttling of Docker's disk (runc; refused on runsc).

Lower bounds only: each limited run must take at least the time its bytes need at the limit
(with a generous margin for the bucket's burst and clock granularity). An unlimited run of
the same work is compared to show the limit is what held it back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import textwrap
import time

import pytest

from symbi_common.errors import FailedPrecondition
from symbi_sandbox.channel import ChannelServer
from symbi_sandbox.channel.bandwidth import bytes_per_second
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.images import BUSYBOX_IMAGE, PYTHON_IMAGE
from symbi_sandbox.runner import RunnerConfig, SandboxRunner
from symbi_sandbox.task import ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier

from .conftest import RUNTIMES

pytestmark = pytest.mark.docker

DOWNLOAD = textwrap.dedent(
    """
    import json, sys, time, urllib.request
    import symbi_agent

    symbi_agent.start_egress_proxy()
    started = time.monotonic()
    body = urllib.request.urlopen(sys.argv[1], timeout=60).read()
    print(json.dumps({"bytes": len(body), "elapsed_s": time.monotonic() - started}))
    """
)
SIZE = 3_000_000
LIMIT_MBPS = 8  # 1 MB/s


async def _http_server(body: bytes) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        writer.write(body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_egress_is_held_to_network_io_mbps(
    engine: DockerEngine,
    runner_config: RunnerConfig,
    channel_server: ChannelServer,
    egress_policy,  # type: ignore[no-untyped-def]
    tier: Tier,
) -> None:
    if tier is Tier.GVISOR:
        runsc = (await engine.info()).runtimes.get("runsc")
        if runsc is None or not any(a in ("--host-uds=open", "--host-uds=all") for a in runsc.args):
            pytest.skip("runsc lacks --host-uds=open: gVisor tasks have no channel here")
    web = await _http_server(b"x" * SIZE)
    port = web.sockets[0].getsockname()[1]
    egress_policy.allowed.add(("127.0.0.1", port))
    config = dataclasses.replace(runner_config, default_tier=tier)

    def task(task_id: str, limits: ResourceLimits) -> TaskSpec:
        return TaskSpec(
            task_id=task_id,
            agent_id="agent-io",
            image=PYTHON_IMAGE,
            command=("python3", "/agent/main.py", f"http://127.0.0.1:{port}/"),
            code=DOWNLOAD.encode(),
            network=True,
            limits=limits,
        )

    async with web, SandboxRunner(engine, config, channels=channel_server) as runner:
        runs = {}
        for name, limits in (
            ("unlimited", ResourceLimits()),
            ("limited", ResourceLimits(network_io_mbps=LIMIT_MBPS)),
        ):
            execution = await runner.start(task(f"dl-{name}", limits))
            result = await execution.wait()
            assert result.succeeded, f"{result.reason}\n{execution.output.text()}"
            runs[name] = json.loads(execution.output.text("stdout"))
    assert runs["limited"]["bytes"] == runs["unlimited"]["bytes"] == SIZE
    burst = channel_server.config.egress.burst_bytes
    minimum = (SIZE - burst) / bytes_per_second(LIMIT_MBPS)
    print(
        f"\negress {SIZE} B on {tier.label}: limited to {LIMIT_MBPS} Mbit/s "
        f"{runs['limited']['elapsed_s']:.2f} s (minimum {minimum:.2f} s), "
        f"unlimited {runs['unlimited']['elapsed_s']:.2f} s"
    )
    assert runs["limited"]["elapsed_s"] >= 0.8 * minimum
    assert runs["unlimited"]["elapsed_s"] < runs["limited"]["elapsed_s"]


# Reads the busybox binary twice with O_DIRECT, so every byte comes from the disk (the image
# layers are on Docker's data root); the root is read-only and /tmp is memory, so reads are
# the disk I/O a task can do.
DISK_READ = (
    "stat -c %s /bin/busybox && "
    "dd if=/bin/busybox of=/dev/null bs=64k iflag=direct 2>/dev/null && "
    "dd if=/bin/busybox of=/dev/null bs=64k iflag=direct 2>/dev/null"
)


async def test_disk_reads_are_held_to_disk_io_mbps_on_runc(
    engine: DockerEngine, runner_config: RunnerConfig
) -> None:
    config = dataclasses.replace(runner_config, default_tier=Tier.DOCKER)
    async with SandboxRunner(engine, config) as runner:
        if Tier.DOCKER not in runner.disk_io_tiers:
            pytest.fail(f"no disk to throttle: {runner.disk_io_unavailable(Tier.DOCKER)}")
        elapsed = {}
        size = 0
        for name, limits in (
            ("unlimited", ResourceLimits()),
            ("limited", ResourceLimits(disk_io_mbps=LIMIT_MBPS)),
        ):
            task = TaskSpec(
                task_id=f"disk-{name}",
                agent_id="agent-io",
                image=BUSYBOX_IMAGE,
                command=("sh", "-c", DISK_READ),
                channel=False,
                limits=limits,
            )
            started = time.monotonic()
            execution = await runner.start(task)
            result = await execution.wait()
            elapsed[name] = time.monotonic() - started
            assert result.succeeded, f"{result.reason}\n{execution.output.text()}"
            size = int(execution.output.text("stdout").split()[0])
    minimum = 2 * size / bytes_per_second(LIMIT_MBPS)
    print(
        f"\ndisk read {2 * size} B on runc: limited to {LIMIT_MBPS} Mbit/s "
        f"{elapsed['limited']:.2f} s (minimum {minimum:.2f} s), "
        f"unlimited {elapsed['unlimited']:.2f} s"
    )
    assert elapsed["limited"] >= 0.8 * minimum
    assert elapsed["unlimited"] < elapsed["limited"]


async def test_disk_limit_is_refused_on_gvisor(
    engine: DockerEngine, runner_config: RunnerConfig
) -> None:
    config = dataclasses.replace(runner_config, default_tier=Tier.GVISOR)
    async with SandboxRunner(engine, config) as runner:
        if Tier.GVISOR not in runner.available_tiers:
            pytest.skip("runsc is not registered")
        task = TaskSpec(
            task_id="disk-gvisor",
            agent_id="agent-io",
            image=BUSYBOX_IMAGE,
            command=("true",),
            channel=False,
            limits=ResourceLimits(disk_io_mbps=LIMIT_MBPS),
        )
        with pytest.raises(FailedPrecondition) as refused:
            await runner.start(task)
    assert refused.value.reason == "DISK_IO_LIMIT_UNAVAILABLE"
    assert "gvisor" in refused.value.message
