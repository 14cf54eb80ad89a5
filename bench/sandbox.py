"""Sandbox benchmark: run-to-exit through the runner vs a bare docker SDK run, then saturation.

1. Latency, per runtime (runc, runsc): the same hardened flags (one ContainerSpec) run
   either bare — ``containers.run`` (create+start), ``wait``, ``logs``, ``remove`` with the
   docker SDK in a thread — or through ``SandboxRunner.run`` (validation, tier choice,
   per-task directory and uid, create, start, output streaming, wait, OOM check, removal).
   Runs alternate between the two so that drift hits both alike. Target: ratio ≤ 1.2.
2. Saturation: tasks started concurrently through the runner at growing concurrency until
   throughput stops rising; prints tasks/s and median run-to-exit at each level.
3. Through the service (``--service``, on by default): the sandbox runs as its own process on
   a real NATS (``python -m symbi_sandbox``); the same task goes (a) over gRPC ``Run``
   (started, output, finished) and (b) over the bus as contract C3 says — a TaskAssignment on
   the node's work queue, until its final TaskStatus arrives (journal fsyncs, the agent
   socket, status publication included) — alternating with the bare run.

Usage: ``uv run python bench/sandbox.py [--runs N] [--quick] [--no-service]``. The last line
is ``sandbox overhead runc: <x> runsc: <y>`` (section 1, the runner's overhead).
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
    parser.add_argument("--no-service", dest="service", action="store_false", help="skip section 3")
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
        if args.service:
            await through_service(engine, config, runs)
    finally:
        await engine.aclose()
        shutil.rmtree(work, ignore_errors=True)
    print(f"sandbox overhead runc: {ratios[Tier.DOCKER]:.2f} runsc: {ratios[Tier.GVISOR]:.2f}")


async def through_service(engine: DockerEngine, config: RunnerConfig, runs: int) -> None:
    """Section 3: the same task through the sandbox process (gRPC Run, and C3 on the bus)."""
    import nats
    from google.protobuf import duration_pb2
    from nats.js import api as js_api

    from symbi.bus.v1 import events_pb2
    from symbi.common.v1 import common_pb2
    from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
    from symbi_common.bus import BusEndpoint, ConsumerSpec, Received
    from symbi_common.config import NatsSection
    from symbi_common.grpc import open_channel
    from symbi_common.jetstream import Provisioner
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
    from symbi_testing.services import ServiceCluster

    root = Path(tempfile.mkdtemp(prefix="sbx-bench-svc-"))
    server = NatsServerProcess(NatsServerConfig(store_dir=root / "nats", sync_always=True))
    server.start()
    cluster = ServiceCluster(root / "svc", server.url, server.monitor_url)
    nc = await nats.connect(server.url)
    loops: list[asyncio.Task[None]] = []
    try:
        js = nc.jetstream()
        await Provisioner(js, NatsSection()).provision()
        scheduler = await BusEndpoint.open(
            nc, js, cluster.authority.issue("svc-scheduler-bench", "service")
        )
        finals: dict[str, asyncio.Future[events_pb2.TaskStatus]] = {}

        async def on_status(message: Received) -> None:
            status = message.parse(events_pb2.TaskStatus)
            waiter = finals.get(status.task_id)
            if status.state != events_pb2.TaskStatus.STATE_STARTED and waiter and not waiter.done():
                waiter.set_result(status)

        loops.append(asyncio.create_task(scheduler.run()))
        loops.append(
            asyncio.create_task(
                scheduler.bus.consume(
                    ConsumerSpec.subscription(
                        "SYMBI_EVENTS",
                        ("symbi.task.status.*",),
                        "bench-statuses",
                        deliver_policy=js_api.DeliverPolicy.NEW,
                    ),
                    on_status,
                )
            )
        )
        process = await cluster.start_serving(
            "sandbox",
            instance="bench",
            env={"SYMBI_SANDBOX__WORK_ROOT": str(root / "w"), "SYMBI_LOG_LEVEL": "warning"},
        )
        assert process.grpc_address is not None
        print(f"through the sandbox service ({runs} runs each, medians; channel on for C3)")
        async with open_channel(process.grpc_address) as channel:
            stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
            for tier in (Tier.DOCKER, Tier.GVISOR):
                proto_tier = (
                    common_pb2.SANDBOX_TIER_GVISOR
                    if tier is Tier.GVISOR
                    else common_pb2.SANDBOX_TIER_DOCKER
                )
                limits = config.limits.resolve(task("x", tier).limits)
                bare_times, grpc_times, bus_times = [], [], []
                for i in range(runs + 2):
                    spec = build_container_spec(
                        task(f"bare-{uuid.uuid4().hex[:8]}", tier),
                        tier=tier,
                        runtime=config.runtimes[tier],
                        limits=limits,
                        node_id=config.node_id,
                        instance_id="bench-bare",
                        uid=config.uid_base + 4001,
                        sdk_dir=str(AGENT_SDK_PATH),
                    )
                    t0 = time.perf_counter()
                    await asyncio.to_thread(bare_run, engine.client, spec.create_kwargs())
                    bare = time.perf_counter() - t0

                    t0 = time.perf_counter()
                    events = [
                        e
                        async for e in stub.Run(
                            sandbox_pb2.RunRequest(
                                agent_id="agent-bench",
                                image=BUSYBOX_IMAGE,
                                command=list(COMMAND),
                                tier=proto_tier,
                                without_channel=True,
                            ),
                            timeout=60,
                        )
                    ]
                    over_grpc = time.perf_counter() - t0
                    assert events[-1].finished.exit_code == 0, events[-1]

                    task_id = f"bus-{uuid.uuid4().hex[:10]}"
                    finals[task_id] = asyncio.get_running_loop().create_future()
                    now = int(time.time() * 1000)
                    order = events_pb2.TaskAssignment(
                        task_id=task_id,
                        agent_id="agent-bench",
                        attempt=1,
                        tier=proto_tier,
                        limits=common_pb2.ResourceLimits(
                            execution_timeout=duration_pb2.Duration(seconds=60)
                        ),
                        image=BUSYBOX_IMAGE,
                        command=list(COMMAND),
                        dispatch_id=f"{task_id}-1",
                        not_after_ms=now + 30_000,
                        node_id="node-bench",
                    )
                    t0 = time.perf_counter()
                    await scheduler.bus.send("node-bench", order, subject="symbi.task.node-bench")
                    final = await asyncio.wait_for(finals[task_id], 60)
                    del finals[task_id]
                    over_bus = time.perf_counter() - t0
                    assert final.state == events_pb2.TaskStatus.STATE_SUCCEEDED, final
                    if i >= 2:
                        bare_times.append(bare)
                        grpc_times.append(over_grpc)
                        bus_times.append(over_bus)
                b, g, n = (statistics.median(x) for x in (bare_times, grpc_times, bus_times))
                print(
                    f"  {config.runtimes[tier]:5}: bare {b * 1000:7.1f} ms · gRPC Run "
                    f"{g * 1000:7.1f} ms ({g / b:.2f}×) · C3 over the bus {n * 1000:7.1f} ms "
                    f"({n / b:.2f}×)",
                    flush=True,
                )
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await nc.close()
        await asyncio.to_thread(cluster.stop_all)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
