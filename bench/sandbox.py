"""Sandbox benchmark: run-to-exit through the runner vs a bare docker SDK run, then saturation.

1. Latency, per runtime (runc, runsc): the same hardened flags (one ContainerSpec) run
   either bare — ``containers.run`` (create+start), ``wait``, ``logs``, ``remove`` with the
   docker SDK in a thread — or through ``SandboxRunner.run`` (validation, tier choice,
   per-task directory and uid, create, start, output streaming, wait, OOM check, removal).
   Runs alternate between the two so that drift hits both alike. Target: ratio ≤ 1.2.
2. Saturation: tasks started concurrently through the runner at growing concurrency until
   throughput stops rising; prints tasks/s and median run-to-exit at each level.

Usage: ``uv run python bench/sandbox.py [--runs N] [--quick]``. The last line is
``sandbox overhead runc: <x> runsc: <y>``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import build_container_spec
from symbi_sandbox.images import BUSYBOX_IMAGE, build_images
from symbi_sandbox.runner import AGENT_SDK_PATH, RunnerConfig, SandboxRunner
from symbi_sandbox.task import TaskSpec
from symbi_sandbox.tiers import Tier

COMMAND = ("sh", "-c", "echo hello")


def task(task_id: str, tier: Tier) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        agent_id="bench",
        image=BUSYBOX_IMAGE,
        command=COMMAND,
        tier=tier,
        channel=False,
    )


def bare_run(client: object, kwargs: dict[str, object]) -> bytes:
    container = client.containers.run(**kwargs)  # type: ignore[attr-defined]
    try:
        container.wait(timeout=60)
        return bytes(container.logs())
    finally:
        container.remove(force=True)


async def latency(
    engine: DockerEngine, runner: SandboxRunner, config: RunnerConfig, tier: Tier, runs: int
) -> tuple[float, float]:
    runtime = config.runtimes[tier]
    limits = config.limits.resolve(task("x", tier).limits)
    bare_times: list[float] = []
    runner_times: list[float] = []
    for i in range(runs + 2):  # two warm-up rounds, not counted
        spec = build_container_spec(
            task(f"bare-{uuid.uuid4().hex[:8]}", tier),
            tier=tier,
            runtime=runtime,
            limits=limits,
            node_id=config.node_id,
            instance_id="bench-bare",
            uid=config.uid_base + 4000,
            sdk_dir=str(AGENT_SDK_PATH),
        )
        started = time.perf_counter()
        output = await asyncio.to_thread(bare_run, engine.client, spec.create_kwargs())
        bare = time.perf_counter() - started
        assert output.strip() == b"hello", output

        started = time.perf_counter()
        execution = await runner.start(task(f"run-{uuid.uuid4().hex[:8]}", tier))
        result = await execution.wait()
        ours = time.perf_counter() - started
        assert result.succeeded, result
        assert execution.output.text().strip() == "hello"
        if i >= 2:
            bare_times.append(bare)
            runner_times.append(ours)
    return statistics.median(bare_times), statistics.median(runner_times)


async def saturation(runner: SandboxRunner, tier: Tier, levels: list[int]) -> list[str]:
    lines = []
    best = 0.0
    for level in levels:
        batch = level * 2
        started = time.perf_counter()

        async def one(i: int, level: int = level) -> float:
            t0 = time.perf_counter()
            result = await runner.run(task(f"sat-{level}-{i}-{uuid.uuid4().hex[:6]}", tier))
            assert result.succeeded, result
            return time.perf_counter() - t0

        semaphore = asyncio.Semaphore(level)

        async def limited(i: int, semaphore: asyncio.Semaphore = semaphore) -> float:
            async with semaphore:
                return await one(i)

        durations = await asyncio.gather(*(limited(i) for i in range(batch)))
        elapsed = time.perf_counter() - started
        rate = batch / elapsed
        lines.append(
            f"  {tier.label:6} concurrency {level:3}: {rate:6.2f} tasks/s, "
            f"median run-to-exit {statistics.median(durations):.3f} s"
        )
        print(lines[-1], flush=True)
        if rate < best * 1.05:
            best = max(best, rate)
            lines.append(
                f"  {tier.label:6} saturated at concurrency ≈ {level} ({best:.2f} tasks/s peak)"
            )
            print(lines[-1], flush=True)
            break
        best = max(best, rate)
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="fewer runs, fewer levels")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    levels = [1, 2, 4] if args.quick else [1, 2, 4, 8, 16, 32]

    engine = await DockerEngine.connect()
    await asyncio.to_thread(build_images, engine.client, if_missing=True, names=[BUSYBOX_IMAGE])
    work = Path(tempfile.mkdtemp(prefix="sbx-bench-"))
    config = RunnerConfig(
        node_id=f"bench-{uuid.uuid4().hex[:8]}", work_root=work, max_concurrent_tasks=64
    )
    ratios: dict[Tier, float] = {}
    try:
        async with SandboxRunner(engine, config) as runner:
            print(f"run-to-exit of `{' '.join(COMMAND)}` ({runs} runs each, medians)")
            for tier in (Tier.DOCKER, Tier.GVISOR):
                bare, ours = await latency(engine, runner, config, tier, runs)
                ratios[tier] = ours / bare
                print(
                    f"  {config.runtimes[tier]:5}: bare docker SDK {bare * 1000:7.1f} ms · "
                    f"runner {ours * 1000:7.1f} ms · ratio {ratios[tier]:.2f}",
                    flush=True,
                )
            print("saturation (batches of 2× the concurrency)")
            for tier in (Tier.DOCKER, Tier.GVISOR):
                await saturation(runner, tier, levels)
    finally:
        await engine.aclose()
        shutil.rmtree(work, ignore_errors=True)
    print(f"sandbox overhead runc: {ratios[Tier.DOCKER]:.2f} runsc: {ratios[Tier.GVISOR]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
