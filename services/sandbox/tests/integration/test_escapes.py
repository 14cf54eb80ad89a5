"""Escape attempts fail on both runtimes, and no container outlives its task."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import textwrap

import pytest

from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.images import BUSYBOX_IMAGE, PYTHON_IMAGE
from symbi_sandbox.runner import ExecutionState, RunnerConfig, SandboxRunner, TaskResult
from symbi_sandbox.task import ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier

from .conftest import RUNTIMES

pytestmark = pytest.mark.docker

NETWORK_PROBE = textwrap.dedent(
    """
    import json, socket, sys
    out = {"interfaces": sorted(name for _, name in socket.if_nameindex())}
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
        out["host_loopback"] = "connected"
    except OSError as exc:
        out["host_loopback"] = type(exc).__name__
    print(json.dumps(out))
    """
)

FORK_COUNTER = textwrap.dedent(
    """
    import os, time
    n = 0
    try:
        while n < 5000:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            n += 1
        print("unlimited", n)
    except OSError as exc:
        print("limited", n, exc.errno)
    """
)


async def run(
    runner: SandboxRunner, task_id: str, image: str, *cmd: str, **limits: float
) -> TaskResult:
    task = TaskSpec(
        task_id=task_id,
        agent_id="escapee",
        image=image,
        command=cmd,
        channel=False,
        limits=ResourceLimits(**limits),  # type: ignore[arg-type]
    )
    execution = await runner.start(task)
    result = await execution.wait()
    return dataclasses.replace(result, reason=result.reason + " | " + execution.output.text())


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_escape_attempts_fail(
    engine: DockerEngine, runner_config: RunnerConfig, tier: Tier
) -> None:
    connections = 0

    async def on_connect(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    host_server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    host_port = host_server.sockets[0].getsockname()[1]
    config = dataclasses.replace(runner_config, default_tier=tier)
    async with host_server, SandboxRunner(engine, config) as runner:
        results = await asyncio.gather(
            run(runner, "net", PYTHON_IMAGE, "python3", "-c", NETWORK_PROBE, str(host_port)),
            run(
                runner,
                "rootfs",
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                "touch /tmp/ok || exit 10; touch /pwned && exit 11; "
                "echo x >> /etc/passwd && exit 12; echo blocked",
            ),
            run(
                runner,
                "caps",
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                "grep CapEff /proc/self/status; id -u; hostname evil && exit 11; "
                "chroot / true && exit 12; chown 0 /tmp && exit 13; echo denied",
            ),
            run(runner, "forks", PYTHON_IMAGE, "python3", "-c", FORK_COUNTER, max_processes=32),
            run(
                runner,
                "bomb",
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                "b(){ b|b& }; b; sleep 30",
                max_processes=32,
                timeout_s=2,
            ),
            run(
                runner,
                "hog",
                PYTHON_IMAGE,
                "python3",
                "-c",
                "x = bytearray(512 * 1024 * 1024); print('survived', len(x))",
                memory_mb=64,
            ),
            run(runner, "sleeper", BUSYBOX_IMAGE, "sleep", "60", timeout_s=1),
        )
    net, rootfs, caps, forks, bomb, hog, sleeper = results
    failures = []

    def check(name: str, ok: bool, result: TaskResult) -> None:
        if not ok:
            failures.append(f"{name}: {result.state.value} exit={result.exit_code} {result.reason}")

    probe = json.loads(net.reason.split(" | ", 1)[1] or "{}")
    check(
        "network",
        probe.get("interfaces") == ["lo"]
        and probe.get("host_loopback") != "connected"
        and connections == 0,
        net,
    )
    check("write to /", rootfs.succeeded and "blocked" in rootfs.reason, rootfs)
    check(
        "capabilities",
        caps.succeeded
        and "CapEff:\t0000000000000000" in caps.reason
        and "denied" in caps.reason
        and "\n0\n" not in caps.reason,
        caps,
    )
    counted = forks.reason.split(" | ", 1)[1].split()
    check("fork limit", forks.succeeded and counted[0] == "limited" and int(counted[1]) < 32, forks)
    check("fork bomb", bomb.state in (ExecutionState.TIMED_OUT, ExecutionState.EXITED), bomb)
    check(
        "memory hog", hog.state is ExecutionState.OOM_KILLED and "survived" not in hog.reason, hog
    )
    check(
        "sleeper", sleeper.state is ExecutionState.TIMED_OUT and sleeper.exit_code == 137, sleeper
    )
    assert not failures, "\n".join(failures)
