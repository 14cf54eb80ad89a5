"""A sandbox process killed with SIGKILL: its containers are found, reported and removed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_sandbox.runner import RunnerConfig, SandboxRunner

pytestmark = pytest.mark.docker

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from symbi_sandbox.engine import DockerEngine
    from symbi_sandbox.runner import RunnerConfig, SandboxRunner
    from symbi_sandbox.task import TaskSpec
    from symbi_sandbox.tiers import Tier

    async def main():
        engine = await DockerEngine.connect()
        config = RunnerConfig(node_id=sys.argv[1], work_root=Path(sys.argv[2]))
        async with SandboxRunner(engine, config) as runner:
            for i, tier in enumerate((Tier.DOCKER, Tier.GVISOR)):
                execution = await runner.start(TaskSpec(
                    task_id=f"doomed-{i}", agent_id="agent-7", image="symbi/busybox",
                    command=("sleep", "300"), tier=tier, channel=False, attempt=2))
                print(execution.container_id, flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_orphans_of_a_killed_process_are_reported_and_removed(
    engine: DockerEngine, runner_config: RunnerConfig, node_id: str, work_root: Path
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        node_id,
        str(work_root),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        ids = [
            (await asyncio.wait_for(child.stdout.readline(), 60)).decode().strip() for _ in range(2)
        ]
        assert all(ids), "the child did not start its tasks"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    running = await engine.list_managed({LABEL_NODE: node_id})
    assert {c.container_id for c in running} == set(ids)  # they outlived the process
    assert os.listdir(work_root)

    async with SandboxRunner(engine, runner_config) as runner:
        lost = sorted(runner.lost_tasks, key=lambda t: t.task_id)
        assert [(t.task_id, t.agent_id, t.attempt, t.container_state) for t in lost] == [
            ("doomed-0", "agent-7", 2, "running"),
            ("doomed-1", "agent-7", 2, "running"),
        ]
        assert {t.container_id for t in lost} == set(ids)
        assert await engine.list_managed({LABEL_NODE: node_id}) == []
        assert os.listdir(work_root) == []
