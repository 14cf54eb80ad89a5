"""Scheduling decisions with 10,000 queued agents over 100 simulated nodes, against heapq.

Runs one deterministic workload through
  (a)  a plain heapq first-fit loop (the baseline): pop the most urgent task, scan the nodes
       for the first that fits (memory, CPU, slots, tier, labels);
  (b)  the scheduler's domain parts alone: ``TaskQueue`` (aging) + ``Placer`` (best-fit /
       spread by priority) over the ``NodeRegistry``;
  (c)  ``SchedulerCore`` end to end with in-memory ports: journal write-ahead (records JSON
       encoded as on the wire), the ``allocate`` policy call, the dispatch order, the
       acknowledgement — one ``schedule(max_decisions=1)`` call per decision;
  (d)  the scheduler *process* (``python -m symbi_scheduler``) on a real NATS server
       (``sync_interval: always``), with the real policy service process deciding
       ``allocate``, and 100 simulated worker nodes — bus principals of role "node" that
       heartbeat every second (``--heartbeat-interval``) and acknowledge per contract C3 (tests/integration/nodesim.py),
       all in this process. 10,000 tasks are queued over gRPC before any node joins; then
       the nodes join and the scheduler places until the cluster is full (the queue stays
       above ~6,800 throughout). A decision there is: the policy request/reply, the
       journal write (a compare-and-set JetStream publish, fsynced), the TaskAssignment
       (a JetStream publish, fsynced). Its wall time is measured inside the process.
       Then, with the cluster full and the rest queued (10,000 agents registered), the
       scheduler process's CPU is read from /proc while it only follows heartbeats.

(a)-(c): percentiles and rates are of the thread's CPU time per decision, which is what a
decision costs; the wall-clock p99 is printed beside it (on a shared machine it mostly
measures the other processes). (d) reports wall time, since it is I/O.

The last line is what CI reads: `scheduler p99_ms: <x> ratio_vs_heapq: <y>` — the wall-clock
p99 of a decision in the scheduler process (d), and (d)'s decisions/s divided by (a)'s. With
``--no-process`` it is (c)'s CPU p99 and rate ratio instead (the line before says which).

    uv run python bench/scheduler.py            # full size
    uv run python bench/scheduler.py --quick    # a few seconds for (a)-(c), 2,000 tasks on 20 nodes for (d)
    uv run python bench/scheduler.py --process-only --decisions 3000   # (a) briefly, then (d) at full size
    ... --tasks N --nodes M --heartbeat-interval S   # (d) at another size / node heartbeat interval

The idle line names its conditions: agents registered (running and queued), nodes, and their
heartbeat interval; the idle share is the process's user+system CPU over a 10 s window.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import logging
import os
import random
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from symbi_scheduler import (
    ManualClock,
    NodeCapacity,
    NodeHeartbeat,
    NodeOptions,
    NodeRegistry,
    PlacementOptions,
    Placer,
    Priority,
    ResourceRequest,
    SandboxTier,
    SchedulerCore,
    SchedulerOptions,
    TaskOutcome,
    TaskQueue,
    TaskResult,
    TaskSpec,
)
from symbi_scheduler.memory import InMemoryJournal, RecordingLifecycle, StaticPolicy

NODES = 100
QUEUED = 10_000
NODE_MEM = 16_384
NODE_CPU = 16_000
NODE_SLOTS = 32
ZONES = ("z0", "z1", "z2", "z3")
PRIORITIES = (Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW)
PRIORITY_WEIGHTS = (1, 19, 50, 30)


# ---------------------------------------------------------------- workload
@dataclass(frozen=True)
class Job:
    task_id: str
    priority: Priority
    mem: int
    cpu: int
    tier: SandboxTier
    zone: str | None

    def spec(self) -> TaskSpec:
        return TaskSpec(
            task_id=self.task_id,
            agent_id=f"agent-{self.task_id}",
            resources=ResourceRequest(memory_mb=self.mem, cpu_millicores=self.cpu),
            priority=self.priority,
            tier=self.tier,
            node_selector={"zone": self.zone} if self.zone else {},
        )


class Workload:
    """An endless, seeded stream of jobs and of 'which running task ends now' choices."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def job(self) -> Job:
        rng = self.rng
        self.n += 1
        return Job(
            task_id=f"t{self.n:07d}",
            priority=rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            mem=rng.choice((256, 512, 1024, 2048)),
            cpu=rng.choice((250, 500, 1000, 2000)),
            tier=SandboxTier.GVISOR if rng.random() < 0.2 else SandboxTier.DOCKER,
            zone=rng.choice(ZONES) if rng.random() < 0.1 else None,
        )

    def pick(self, running: list[str]) -> int:
        return self.rng.randrange(len(running))


def node_tiers(i: int) -> frozenset[SandboxTier]:
    return frozenset(
        {SandboxTier.DOCKER, SandboxTier.GVISOR} if i % 3 == 0 else {SandboxTier.DOCKER}
    )


def heartbeat(i: int) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=f"node{i:03d}",
        capacity=NodeCapacity(NODE_MEM, NODE_CPU, 1000, 1000, NODE_SLOTS),
        tiers=node_tiers(i),
        labels={"zone": ZONES[i % len(ZONES)]},
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[98]


@dataclass
class Result:
    """Per-placement samples: ``cpu`` is the thread's CPU time (what the decision costs),
    ``wall`` the elapsed time (adds whatever else the machine was running)."""

    name: str
    cpu: list[float]
    wall: list[float]

    @property
    def rate(self) -> float:
        """Decisions per second of CPU time."""
        return len(self.cpu) / sum(self.cpu)

    def line(self, base: Result | None) -> str:
        p50, p99 = percentiles(self.cpu)
        _, wall99 = percentiles(self.wall)
        ratio = f"  {self.rate / base.rate:6.3f}x heapq" if base is not None else ""
        return (
            f"{self.name:<34} p50 {p50 * 1e6:7.1f} µs  p99 {p99 * 1e6:7.1f} µs "
            f"(wall p99 {wall99 * 1e6:8.1f} µs)  {self.rate:9,.0f} decisions/s{ratio}"
        )


class Stopwatch:
    """Both clocks at once."""

    __slots__ = ("cpu0", "wall0")

    def start(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.thread_time()

    def stop(self) -> tuple[float, float]:
        cpu = time.thread_time() - self.cpu0
        return cpu, time.perf_counter() - self.wall0


# ---------------------------------------------------------------- (a) heapq baseline
def run_heapq(decisions: int, seed: int) -> Result:
    work = Workload(seed)
    heap: list[tuple[int, int, Job]] = []
    seq = 0
    for _ in range(QUEUED):
        job = work.job()
        heapq.heappush(heap, (int(job.priority), seq, job))
        seq += 1
    # per node: [free_mem, free_cpu, free_slots, tiers, zone]
    nodes = [[NODE_MEM, NODE_CPU, NODE_SLOTS, node_tiers(i), ZONES[i % 4]] for i in range(NODES)]
    running: list[tuple[Job, int]] = []
    cpu: list[float] = []
    wall: list[float] = []
    watch = Stopwatch()
    while len(cpu) < decisions:
        watch.start()
        _, s, job = heapq.heappop(heap)
        placed = -1
        for idx, n in enumerate(nodes):
            if (
                n[0] >= job.mem
                and n[1] >= job.cpu
                and n[2] > 0
                and job.tier in n[3]
                and (job.zone is None or job.zone == n[4])
            ):
                n[0] -= job.mem
                n[1] -= job.cpu
                n[2] -= 1
                placed = idx
                break
        c, w = watch.stop()
        if placed < 0:
            heapq.heappush(heap, (int(job.priority), s, job))  # back, in place
            done, at = running.pop(work.pick(running))
            n = nodes[at]
            n[0] += done.mem
            n[1] += done.cpu
            n[2] += 1
            continue
        cpu.append(c)
        wall.append(w)
        running.append((job, placed))
        new = work.job()
        heapq.heappush(heap, (int(new.priority), seq, new))
        seq += 1
    return Result("(a) heapq first-fit", cpu, wall)


# ---------------------------------------------------------------- (b) domain parts
def run_domain(decisions: int, seed: int) -> Result:
    work = Workload(seed)
    queue = TaskQueue(aging_interval_s=30.0)
    registry = NodeRegistry(NodeOptions())
    placer = Placer(PlacementOptions())
    for i in range(NODES):
        registry.heartbeat(heartbeat(i), 0.0)
    specs: dict[str, TaskSpec] = {}
    seq = 0

    def push(job: Job) -> None:
        nonlocal seq
        spec = job.spec()
        specs[spec.task_id] = spec
        queue.push(spec.task_id, spec.priority, enqueued_at=seq * 0.001, seq=seq)
        seq += 1

    for _ in range(QUEUED):
        push(work.job())
    running: list[tuple[str, str]] = []
    cpu: list[float] = []
    wall: list[float] = []
    watch = Stopwatch()
    held: list[str] = []
    while len(cpu) < decisions:
        watch.start()
        task_id = queue.pop()
        assert task_id is not None
        spec = specs[task_id]
        node = placer.choose(spec, registry.matching(spec))
        if node is not None:
            registry.charge(node.node_id, task_id, spec.resources.vector, spec.priority)
        c, w = watch.stop()
        if node is None:
            held.append(task_id)
            if len(held) < 8:
                continue  # look a little further down the queue, like the core's lookahead
            for tid in held:
                queue.push(tid, specs[tid].priority, enqueued_at=0.0, seq=0)
            held.clear()
            done, at = running.pop(work.pick(running))
            registry.release(at, done)
            continue
        cpu.append(c)
        wall.append(w)
        running.append((task_id, node.node_id))
        push(work.job())
    return Result("(b) TaskQueue + Placer", cpu, wall)


# ---------------------------------------------------------------- (c) the core
class CountingDispatcher:
    def __init__(self) -> None:
        self.last = None
        self.count = 0
        self.stops: list = []

    async def dispatch(self, order) -> None:
        self.last = order
        self.count += 1

    async def stop(self, order) -> None:
        self.stops.append(order)


async def run_core(decisions: int, seed: int) -> tuple[Result, dict[str, float]]:
    work = Workload(seed)
    clock = ManualClock()
    dispatcher = CountingDispatcher()
    core = SchedulerCore(
        journal=InMemoryJournal(),
        dispatcher=dispatcher,
        policy=StaticPolicy(),
        lifecycle=RecordingLifecycle(),
        clock=clock,
        options=SchedulerOptions(),
    )
    await core.activate()
    for i in range(NODES):
        await core.heartbeat(heartbeat(i))
    t0 = time.perf_counter()
    for _ in range(QUEUED):
        await core.submit(work.job().spec())
    submit_s = (time.perf_counter() - t0) / QUEUED
    running: list[str] = []
    cpu: list[float] = []
    wall: list[float] = []
    watch = Stopwatch()
    perf = time.perf_counter
    blocked = 0
    preempted = 0
    interval = SchedulerOptions().nodes.heartbeat_interval_s
    last_beat = clock.monotonic()
    while len(cpu) < decisions:
        clock.advance(0.001)
        if clock.monotonic() - last_beat >= interval:
            # Nodes heartbeat and the driver ticks between decisions, as in the service.
            last_beat = clock.monotonic()
            for i in range(NODES):
                await core.heartbeat(heartbeat(i))
            await core.tick()
        watch.start()
        report = await core.schedule(max_decisions=1)
        c, w = watch.stop()
        if not report.placements:
            blocked += 1
            # A running task ends; its node reports the result.
            task_id = running.pop(work.pick(running))
            rec = core.task(task_id)
            await core.task_finished(
                TaskResult(task_id, rec.dispatch_id, rec.node_id, TaskOutcome.COMPLETED)
            )
            continue
        cpu.append(c)
        wall.append(w)
        (placement,) = report.placements
        order = dispatcher.last
        await core.acknowledge(order.task_id, order.dispatch_id, order.node_id)
        running.append(placement.task_id)
        for victim in placement.preempted:
            preempted += 1
            running.remove(victim)
            rec = core.task(victim)
            await core.task_finished(
                TaskResult(victim, rec.dispatch_id, rec.node_id, TaskOutcome.STOPPED)
            )
        await core.submit(work.job().spec())
    status = core.status()
    assert status.queued_total >= QUEUED - 1, status.queued_total

    # Idle costs with 10,000 queued and a full cluster: what the process does with nothing
    # to decide — ticks, node heartbeats, and the periodic retry cycle.
    n = 2000
    perf = time.thread_time
    t0 = perf()
    for _ in range(n):
        await core.tick()
    tick_s = (perf() - t0) / n
    t0 = perf()
    for i in range(n):
        await core.heartbeat(heartbeat(i % NODES))
    hb_s = (perf() - t0) / n
    t0 = perf()
    for _ in range(200):
        await core.schedule()
    retry_s = (perf() - t0) / 200
    # Per second: one tick per second at least, NODES/interval heartbeats, one retry cycle
    # per heartbeat interval.
    idle_share = tick_s + NODES / interval * hb_s + retry_s / interval
    extra = {
        "submit_us": submit_s * 1e6,
        "tick_us": tick_s * 1e6,
        "heartbeat_us": hb_s * 1e6,
        "retry_cycle_us": retry_s * 1e6,
        "idle_cpu_share": idle_share,
        "blocked_cycles": blocked,
        "preempted": preempted,
        "queued": status.queued_total,
        "running": status.running,
        "util_mem": status.utilisation["memory_mb"],
    }
    return Result("(c) SchedulerCore, in-memory ports", cpu, wall), extra


# ---------------------------------------------------------------- (d) the process
_PROTO_PRIORITY = {Priority.CRITICAL: 1, Priority.HIGH: 2, Priority.NORMAL: 3, Priority.LOW: 4}
_PROTO_TIER = {SandboxTier.DOCKER: 1, SandboxTier.GVISOR: 2}
#: The node simulator lives with the scheduler's integration tests.
SCHEDULER_TESTS = Path(__file__).resolve().parent.parent / "services/scheduler/tests"
ALLOW_ALLOCATE = (
    'permit(principal is Symbi::Agent, action == Symbi::Action::"allocate", '
    "resource is Symbi::Node);"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class ProcessResult:
    tasks: int
    nodes: int
    submit_s: float
    decisions: int
    burst_s: float
    p50_ms: float
    p99_ms: float
    queued_during: tuple[int, int]
    cpu_per_decision_ms: float
    idle_cpu_share: float
    heartbeat_s: float
    idle_queued: int
    idle_running: int
    rss_mb: float
    policy_decisions: int

    @property
    def rate(self) -> float:
        return self.decisions / self.burst_s


async def run_process(
    tasks: int, nodes: int, seed: int, heartbeat_s: float = 1.0, linger_s: float = 0.0
) -> ProcessResult:
    import sys
    import tempfile

    from google.protobuf import struct_pb2

    from symbi.common.v1 import common_pb2
    from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
    from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
    from symbi_common.grpc import open_channel
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
    from symbi_testing.services import ServiceCluster

    sys.path.insert(0, str(SCHEDULER_TESTS))
    from integration.nodesim import SimulatedNode

    root = Path(tempfile.mkdtemp(prefix="symbi-bench-scheduler-"))
    server = NatsServerProcess(NatsServerConfig(store_dir=root / "nats", sync_always=True))
    server.start()
    cluster = ServiceCluster(root / "services", server.url, server.monitor_url)
    sims: list[SimulatedNode] = []
    try:
        quiet = {"SYMBI_LOG_LEVEL": "warning"}
        policy = await cluster.start_serving("policy", instance="bench", env=quiet)
        scheduler = await cluster.start_serving(
            "scheduler",
            instance="bench",
            env={
                **quiet,
                "SYMBI_SCHEDULER__NODE_MAX_TASKS": str(NODE_SLOTS),
                "SYMBI_SCHEDULER__NODE_DISK_IO_MBPS": "1000",
                "SYMBI_SCHEDULER__NODE_NETWORK_IO_MBPS": "1000",
                "SYMBI_SCHEDULER__MAX_QUEUED": "200000",
                "SYMBI_SECURITY__DEFAULT_SANDBOX_TIER": "docker",
                "SYMBI_SCHEDULER__HEARTBEAT_INTERVAL_S": str(heartbeat_s),
            },
        )
        assert policy.grpc_address is not None
        assert scheduler.grpc_address is not None
        assert scheduler.pid is not None
        work = Workload(seed)
        jobs = [work.job() for _ in range(tasks)]
        async with open_channel(policy.grpc_address) as channel:
            pstub = policy_pb2_grpc.PolicyServiceStub(channel)
            await pstub.PutPolicy(
                policy_pb2.PutPolicyRequest(id="bench-allocate", source=ALLOW_ALLOCATE), timeout=30
            )
            # Lifecycle registers every agent in the policy store (contract C2).
            for i in range(0, tasks, 500):
                entities = [
                    policy_pb2.Entity(
                        uid=policy_pb2.EntityRef(type="Agent", id=f"agent-{j.task_id}"),
                        attrs=struct_pb2.Struct(),
                    )
                    for j in jobs[i : i + 500]
                ]
                await pstub.PutEntities(
                    policy_pb2.PutEntitiesRequest(entities=entities), timeout=60
                )
        channel = open_channel(scheduler.grpc_address)
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        status_request = scheduler_pb2.GetSystemStatusRequest()
        # A remote process's state: polled, there is no event to wait on.
        while not (await stub.GetSystemStatus(status_request, timeout=5)).leader:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

        def request(job: Job) -> scheduler_pb2.ScheduleAgentRequest:
            return scheduler_pb2.ScheduleAgentRequest(
                task_id=job.task_id,
                agent_id=f"agent-{job.task_id}",
                priority=_PROTO_PRIORITY[job.priority],  # type: ignore[arg-type]
                tier=_PROTO_TIER[job.tier],  # type: ignore[arg-type]
                limits=common_pb2.ResourceLimits(memory_mb=job.mem, cpu_millicores=job.cpu),
                node_selector={"zone": job.zone} if job.zone else {},
                image="bench",
            )

        # 10,000 agents queued before any node exists (nothing can be placed yet).
        pending = iter(jobs)
        started = time.perf_counter()

        async def submitter() -> None:
            for job in pending:
                await stub.ScheduleAgent(request(job), timeout=30)

        await asyncio.gather(*(submitter() for _ in range(16)))
        submit_s = time.perf_counter() - started
        status = await stub.GetSystemStatus(status_request, timeout=5)
        assert status.queued_total == tasks, status.queued_total

        # The nodes join; the scheduler places until the cluster is full.
        cpu0 = cpu_seconds(scheduler.pid)
        credentials = [cluster.authority.issue(f"node-bench-{i:03d}", "node") for i in range(nodes)]
        for i, cred in enumerate(credentials):
            tiers = (1, 2) if i % 3 == 0 else (1,)
            sims.append(
                SimulatedNode(
                    cred,
                    server.url,
                    memory_mb=NODE_MEM,
                    cpu_millicores=NODE_CPU,
                    tiers=tiers,
                    labels={"zone": ZONES[i % len(ZONES)]},
                    heartbeat_interval_s=heartbeat_s,
                    run_s=None,  # runs until the end: the cluster fills up and stays full
                )
            )
        for i in range(0, nodes, 10):
            await asyncio.gather(*(sim.start() for sim in sims[i : i + 10]))
        first_at = last_at = 0.0
        last_count = -1
        max_queued, min_queued = 0, tasks
        while True:
            await asyncio.sleep(0.25)
            status = await stub.GetSystemStatus(status_request, timeout=5)
            now = time.perf_counter()
            if status.decisions_total and not first_at:
                first_at = now
            if status.decisions_total != last_count:
                last_count, last_at = status.decisions_total, now
                max_queued = max(max_queued, status.queued_total)
                min_queued = min(min_queued, status.queued_total)
            elif first_at and now - last_at > 8.0:
                break  # nothing placed for a while: the cluster is full
        decided = await stub.GetSystemStatus(status_request, timeout=5)
        cpu_burst = cpu_seconds(scheduler.pid) - cpu0
        burst_s = max(last_at - first_at, 1e-3)
        # Idle: the cluster is full, the rest waits; the process follows nodes/heartbeat_s
        # heartbeats per second (100 with the defaults),
        # renews its lease and retries the queue each heartbeat interval.
        await asyncio.sleep(3.0)
        idle_window = 10.0
        c0, t0 = cpu_seconds(scheduler.pid), time.perf_counter()
        await asyncio.sleep(idle_window)
        idle = (cpu_seconds(scheduler.pid) - c0) / (time.perf_counter() - t0)
        final = await stub.GetSystemStatus(status_request, timeout=5)
        if linger_s:
            print(f"lingering {linger_s:.0f} s; scheduler pid {scheduler.pid}", flush=True)
            await asyncio.sleep(linger_s)
        await channel.close()
        return ProcessResult(
            tasks=tasks,
            nodes=nodes,
            submit_s=submit_s,
            decisions=decided.decisions_total,
            burst_s=burst_s,
            p50_ms=decided.decision_p50_ms,
            p99_ms=decided.decision_p99_ms,
            queued_during=(min_queued, max_queued),
            cpu_per_decision_ms=cpu_burst / max(decided.decisions_total, 1) * 1000,
            idle_cpu_share=idle,
            heartbeat_s=heartbeat_s,
            idle_queued=final.queued_total,
            idle_running=final.running_tasks,
            rss_mb=rss_mb(scheduler.pid),
            policy_decisions=decided.decisions_total,
        )
    finally:
        for sim in sims:
            await sim.stop()
        await asyncio.to_thread(cluster.stop_all)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)  # the NATS store and the services' files


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions")
    parser.add_argument("--decisions", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-process", action="store_true", help="skip (d), the scheduler process on NATS"
    )
    parser.add_argument(
        "--process-only", action="store_true", help="only (a) and (d), for development"
    )
    parser.add_argument(
        "--tasks", type=int, default=None, help="(d): tasks queued (default 10,000; --quick 2,000)"
    )
    parser.add_argument(
        "--nodes", type=int, default=None, help="(d): simulated nodes (default 100; --quick 20)"
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=1.0,
        help="(d): the nodes' heartbeat interval in seconds, also the scheduler's "
        "heartbeat_interval_s (default 1, contract C3)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        help="keep (d) running idle this many seconds after measuring (to profile it)",
    )
    args = parser.parse_args()
    decisions = args.decisions or (3_000 if args.quick else 20_000)

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"load average at start: {load} on {os.cpu_count()} CPUs")
    print(
        f"{QUEUED:,} queued, {NODES} nodes ({NODE_MEM} MiB, {NODE_CPU}m, {NODE_SLOTS} slots; "
        f"1/3 with gvisor; 4 zones), {decisions:,} placements each\n"
    )
    base = run_heapq(decisions, args.seed)
    print(base.line(None))
    if not args.process_only:
        domain = run_domain(decisions, args.seed)
        print(domain.line(base))
        core, extra = asyncio.run(run_core(decisions, args.seed))
        print(core.line(base))
        print(
            f"\ncore: submit {extra['submit_us']:.1f} µs/task; at the end {extra['queued']:,} queued, "
            f"{extra['running']:,} running, memory {extra['util_mem']:.0%} allocated; "
            f"{extra['blocked_cycles']:,} cycles found the cluster full; "
            f"{extra['preempted']} tasks preempted"
        )
        print(
            f"idle work: tick {extra['tick_us']:.1f} µs, heartbeat {extra['heartbeat_us']:.1f} µs, "
            f"retry cycle {extra['retry_cycle_us']:.1f} µs -> ~{extra['idle_cpu_share']:.3%} of a core "
            "(domain only; (d) measures the process)"
        )
        _, p99 = percentiles(core.cpu)
        if args.no_process:
            print("last line: (c), CPU time per decision, in-memory ports")
            print(f"scheduler p99_ms: {p99 * 1e3:.3f} ratio_vs_heapq: {core.rate / base.rate:.3f}")
            return
    tasks, nodes = (2_000, 20) if args.quick else (QUEUED, NODES)
    tasks, nodes = args.tasks or tasks, args.nodes or nodes
    print(f"\n(d) the scheduler process: {tasks:,} tasks queued over gRPC, then {nodes} nodes join")
    proc = asyncio.run(
        run_process(
            tasks, nodes, args.seed, heartbeat_s=args.heartbeat_interval, linger_s=args.linger
        )
    )
    print(
        f"submitted {proc.tasks:,} tasks in {proc.submit_s:.1f} s "
        f"({proc.tasks / proc.submit_s:,.0f}/s over gRPC, each journaled before the answer)"
    )
    print(
        f"(d) scheduler process, wall time     p50 {proc.p50_ms * 1e3:7.1f} µs  "
        f"p99 {proc.p99_ms * 1e3:7.1f} µs  {proc.rate:9,.0f} decisions/s  "
        f"{proc.rate / base.rate:6.4f}x heapq"
    )
    print(
        f"    {proc.decisions:,} decisions in {proc.burst_s:.1f} s with {proc.queued_during[1]:,}"
        f" → {proc.queued_during[0]:,} queued; process CPU {proc.cpu_per_decision_ms:.2f} ms per"
        " decision (all its work: heartbeats, acknowledgements, journal, gRPC status polls)"
    )
    print(
        f"idle with {proc.idle_queued + proc.idle_running:,} agents registered "
        f"({proc.idle_running:,} running, {proc.idle_queued:,} queued) and {proc.nodes} nodes "
        f"heartbeating every {proc.heartbeat_s:g} s: scheduler process CPU "
        f"{proc.idle_cpu_share:.2%} of one core "
        f"(target < 5%); RSS {proc.rss_mb:.0f} MB"
    )
    print(
        "last line: (d), wall time of one decision inside the scheduler process "
        "(policy request/reply + fsynced journal write + fsynced dispatch); ratio of (d)'s "
        "decisions/s (wall) to (a)'s (CPU)"
    )
    print(f"scheduler p99_ms: {proc.p99_ms:.3f} ratio_vs_heapq: {proc.rate / base.rate:.4f}")


if __name__ == "__main__":
    main()
