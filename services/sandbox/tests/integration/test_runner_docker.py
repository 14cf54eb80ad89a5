"""The runner against real Docker: output, refusals, preemption, nothing left behind."""

from __future__ import annotations

import dataclasses
import time

import pytest

from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.images import BUSYBOX_IMAGE
from symbi_sandbox.runner import ExecutionState, RunnerConfig, SandboxRunner
from symbi_sandbox.task import ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier

from .conftest import RUNTIMES

pytestmark = pytest.mark.docker


def task(task_id: str, *command: str, **kw: object) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        agent_id="agent-1",
        image=str(kw.pop("image", BUSYBOX_IMAGE)),
        command=command,
        channel=False,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_output_streams_while_running_and_exit_code_is_reported(
    engine: DockerEngine, runner_config: RunnerConfig, tier: Tier
) -> None:
    config = dataclasses.replace(runner_config, default_tier=tier)
    async with SandboxRunner(engine, config) as runner:
        execution = await runner.start(
            task("stream", "sh", "-c", "echo one; echo two >&2; sleep 1; echo three; exit 7")
        )
        seen: list[tuple[str, bytes, float]] = []
        started = time.monotonic()
        async for chunk in execution.logs():
            seen.append((chunk.stream, chunk.data, time.monotonic() - started))
        result = await execution.wait()
        info = await runner.node_info()
    assert result.state is ExecutionState.EXITED
    assert result.exit_code == 7
    assert result.tier is tier
    assert {(s, d) for s, d, _ in seen} == {
        ("stdout", b"one\n"),
        ("stderr", b"two\n"),
        ("stdout", b"three\n"),
    }
    first = next(t for s, d, t in seen if d == b"one\n")
    last = next(t for s, d, t in seen if d == b"three\n")
    assert last - first > 0.5  # streamed as it happened, not at the end
    assert info.running_task_ids == ()
    assert set(info.tiers) == {Tier.DOCKER, Tier.GVISOR}


@pytest.mark.parametrize("tier", RUNTIMES)
async def test_stop_gives_a_grace_period(
    engine: DockerEngine, runner_config: RunnerConfig, tier: Tier
) -> None:
    config = dataclasses.replace(runner_config, default_tier=tier)
    script = "trap 'echo graceful; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    async with SandboxRunner(engine, config) as runner:
        execution = await runner.start(task("preempt", "sh", "-c", script))
        async for chunk in execution.logs():
            if b"ready" in chunk.data:
                break
        result = await runner.stop("preempt", grace_s=5, reason="preempted")
    assert result.state is ExecutionState.KILLED
    assert result.reason == "preempted"
    assert result.exit_code == 0
    assert "graceful" in execution.output.text()


async def test_refusals_are_clear_and_leave_nothing(
    engine: DockerEngine, runner_config: RunnerConfig
) -> None:
    config = dataclasses.replace(runner_config, default_tier=Tier.DOCKER)
    async with SandboxRunner(engine, config) as runner:
        with pytest.raises(NotFound, match="image not present") as missing:
            await runner.start(task("noimage", "true", image="symbi/does-not-exist:1"))
        assert missing.value.reason == "IMAGE_NOT_FOUND"
        with pytest.raises(InvalidArgument) as no_command:
            await runner.start(task("nocmd", "/bin/definitely-missing"))
        assert no_command.value.reason == "COMMAND_NOT_FOUND"
        with pytest.raises(InvalidArgument, match="exceeds this node's maximum"):
            await runner.start(task("huge", "true", limits=ResourceLimits(memory_mb=10**6)))
        assert runner.get("nocmd").state is ExecutionState.REFUSED
    # Nothing left: the engine fixture asserts that no container carries this node's label.


async def test_unregistered_runtime_means_tier_unavailable(
    engine: DockerEngine, runner_config: RunnerConfig
) -> None:
    config = dataclasses.replace(
        runner_config, runtimes={Tier.DOCKER: "runc", Tier.GVISOR: "runsc-not-registered"}
    )
    async with SandboxRunner(engine, config) as runner:
        assert runner.available_tiers == {Tier.DOCKER}
        with pytest.raises(FailedPrecondition, match="tier gvisor is required"):
            await runner.start(task("strict", "true"))
