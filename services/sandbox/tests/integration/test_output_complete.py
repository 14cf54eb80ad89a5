"""Every byte of a task's output reaches the node: many short lines, partial last lines."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.images import BUSYBOX_IMAGE
from symbi_sandbox.runner import ExecutionState, RunnerConfig, SandboxRunner
from symbi_sandbox.task import TaskSpec
from symbi_sandbox.tiers import Tier

from .conftest import RUNTIMES

pytestmark = pytest.mark.docker

LINE = b"abcdefghijklmnopqrstuvwxy\n"  # 26 bytes
LINES = 2 * 1024 * 1024 // len(LINE)  # 80 659 lines, 2 MiB less 26 bytes
# Written at once; dockerd frames every line, so the node reads ~80 000 frames, mostly
# after the container has exited.
SHORT_LINES = f"yes {LINE.decode().strip()} | head -n {LINES}; printf end >&2"
SHORT_LINES_STDOUT = LINE * LINES

PARTIAL = {
    # script: (stdout, stderr), neither ending in a newline
    "printf abc; printf def >&2": (b"abc", b"def"),
    "echo one; printf two": (b"one\ntwo", b""),
    # Longer than dockerd's 16 KiB log line: stored and sent as several partial frames.
    "head -c 100000 /dev/zero | tr '\\0' x; head -c 70001 /dev/zero | tr '\\0' y >&2": (
        b"x" * 100_000,
        b"y" * 70_001,
    ),
}


def task(task_id: str, script: str) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        agent_id="agent-1",
        image=BUSYBOX_IMAGE,
        command=("sh", "-c", script),
        channel=False,
    )


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_two_megabytes_of_short_lines_arrive_whole(
    engine: DockerEngine, runner_config: RunnerConfig, tier: Tier
) -> None:
    config = dataclasses.replace(runner_config, default_tier=tier, log_buffer_bytes=4 * 1024 * 1024)
    async with SandboxRunner(engine, config) as runner:
        execution = await runner.start(task("short-lines", SHORT_LINES))
        followed = [(c.stream, c.data) async for c in execution.logs()]
        result = await execution.wait()
    assert result.state is ExecutionState.EXITED, result.reason
    assert result.log_bytes == len(SHORT_LINES_STDOUT) + 3
    assert "gap" not in {stream for stream, _ in followed}
    stdout = b"".join(d for s, d in followed if s == "stdout")
    assert len(stdout) == len(SHORT_LINES_STDOUT)
    assert hashlib.sha256(stdout).digest() == hashlib.sha256(SHORT_LINES_STDOUT).digest()
    assert b"".join(d for s, d in followed if s == "stderr") == b"end"
    retained = execution.output.snapshot()
    assert b"".join(c.data for c in retained if c.stream == "stdout") == SHORT_LINES_STDOUT


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_a_partial_last_line_arrives_exactly(
    engine: DockerEngine, runner_config: RunnerConfig, tier: Tier
) -> None:
    config = dataclasses.replace(runner_config, default_tier=tier)
    async with SandboxRunner(engine, config) as runner:
        for n, (script, (stdout, stderr)) in enumerate(PARTIAL.items()):
            execution = await runner.start(task(f"partial-{n}", script))
            result = await execution.wait()
            assert result.state is ExecutionState.EXITED, result.reason
            chunks = execution.output.snapshot()
            got = {
                s: b"".join(c.data for c in chunks if c.stream == s) for s in ("stdout", "stderr")
            }
            assert (got["stdout"], got["stderr"]) == (stdout, stderr), script
            assert result.log_bytes == len(stdout) + len(stderr)
