"""Lifecycle: create 10,000 agents, move them, and weigh what each costs the control plane.

Starts a NATS server (JetStream, fsync on every write) and a lifecycle service process and,
over gRPC with ``--concurrency`` calls in flight, measures:

  (a) baseline: the same number of records written straight into a JetStream KV bucket
      with nats-py (create, then compare-and-set updates) — the floor under every step;
  (b) CreateAgent for ``--agents`` agents (the eight example definitions in turn):
      agents created/s and the latency of a create (validate, store, initialize, READY —
      four KV writes and three transition events with their audit events);
  (c) transitions: Suspend/Resume round trips: transitions/s and p50/p99 latency; and task
      statuses published by a simulated node: statuses applied/s until every agent shows
      the outcome;
  (d) listing every agent, a page at a time;
  (e) control-plane bytes per agent: the lifecycle's KV bytes (records with their history,
      and definitions) and the lifecycle process's memory growth (RSS).

The first run has policy enforcement off, so it measures the lifecycle's own control plane
at full size. A second run repeats (b) and (e) for ``--policy-agents`` agents with a real
policy service process, as in production: every create registers the agent's entity, asks
``create_agent`` and stores the agent's Cedar (contract C2); it adds the policy service's
KV bytes and memory per agent. Its rate is bounded by the policy service, whose every
policy write rebuilds its whole set (see docs/lifecycle.md).

Ratios are against (a). The last line is what CI reads: ``lifecycle bytes per agent: <n>``.

    uv run python bench/lifecycle.py                 # 10,000 agents, then 1,000 with policy
    uv run python bench/lifecycle.py --quick         # 500 and 200, for development
    uv run python bench/lifecycle.py --policy-agents 0   # the lifecycle alone
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import nats

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "agents").iterdir())
KINDS = {".toml": "toml", ".yaml": "yaml"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Timing:
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def line(self, what: str, unit: str = "/s") -> str:
        return (
            f"{what:<34} {self.rate:>9.0f}{unit}  p50 {percentile(self.latencies_ms, 0.5):7.2f} ms"
            f"  p99 {percentile(self.latencies_ms, 0.99):7.2f} ms  ({self.count} in {self.seconds:.1f} s)"
        )


async def timed_many(count: int, concurrency: int, make: Callable[[int], Awaitable[Any]]) -> Timing:
    """Run ``make(i)`` for i < count with ``concurrency`` in flight; per-call latencies."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await make(index)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return Timing(count, time.perf_counter() - started, latencies)


# ---------------------------------------------------------------------- (a) baseline
async def baseline(url: str, count: int, concurrency: int, record: bytes) -> tuple[Timing, Timing]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        from nats.js.api import KeyValueConfig, StorageType

        kv = await js.create_key_value(
            KeyValueConfig(bucket="bench_raw", history=64, storage=StorageType.FILE)
        )
        revisions: dict[int, int] = {}

        async def create(i: int) -> None:
            revisions[i] = await kv.create(f"agent-raw-{i}", record)

        async def update(i: int) -> None:
            key = i % count
            revisions[key] = await kv.update(f"agent-raw-{key}", record, last=revisions[key])

        created = await timed_many(count, concurrency, create)
        updated = await timed_many(min(count, 4000), concurrency, update)
        return created, updated
    finally:
        await nc.close()


# ---------------------------------------------------------------------- the platform
@contextlib.contextmanager
def platform(root: Path, with_policy: bool) -> Iterator[tuple[Any, Any, Any, Any]]:
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
    from symbi_testing.services import ServiceCluster

    server = NatsServerProcess(NatsServerConfig(store_dir=root / "nats", sync_always=True))
    server.start()
    cluster = ServiceCluster(root / "services", server.url, server.monitor_url)
    try:
        env = {
            "SYMBI_LOG_LEVEL": "warning",
            "SYMBI_GRPC__MAX_CONCURRENT_RPCS": "10000",
            "SYMBI_LIFECYCLE__LIST_PAGE_MAX": "1000",
        }
        policy = None
        if with_policy:
            policy = asyncio.run(
                cluster.start_serving(
                    "policy", instance="bench", env={"SYMBI_LOG_LEVEL": "warning"}
                )
            )
        else:
            env["SYMBI_SECURITY__ENFORCE_POLICIES"] = "false"
        lifecycle = asyncio.run(cluster.start_serving("lifecycle", instance="bench", env=env))
        yield server, cluster, lifecycle, policy
    finally:
        cluster.stop_all()
        server.stop()


async def kv_bytes(url: str, stream: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.bytes), int(info.state.messages)
    finally:
        await nc.close()


# ---------------------------------------------------------------------- (b)-(d)
async def exercise(
    args: argparse.Namespace,
    agents: int,
    server: Any,
    cluster: Any,
    lifecycle: Any,
    policy: Any,
    *,
    moves: bool,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    sources = [(KINDS.get(p.suffix, "dsl"), p.name, p.read_text()) for p in EXAMPLES]
    channel = grpc.aio.insecure_channel(
        lifecycle.grpc_address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    )
    stub = lifecycle_pb2_grpc.LifecycleServiceStub(channel)
    ids: list[str] = [f"agent-bench-{i:06d}" for i in range(agents)]
    failed: list[str] = []

    async def create(i: int) -> None:
        kind, name, text = sources[i % len(sources)]
        request = lifecycle_pb2.CreateAgentRequest(file_name=name, agent_id=ids[i], **{kind: text})
        agent = await stub.CreateAgent(request, timeout=120)
        if agent.state != lifecycle_pb2.AGENT_STATE_READY:
            failed.append(f"{agent.id}: {agent.reason}")

    # Warm up the parser caches and the connection (not counted).
    for i in range(len(sources)):
        kind, name, text = sources[i]
        await stub.CreateAgent(
            lifecycle_pb2.CreateAgentRequest(
                file_name=name, agent_id=f"agent-warm-{i}", **{kind: text}
            ),
            timeout=120,
        )
    # Memory after the warm-up: what the agents add, not the process's first-call caches.
    rss_before = rss_bytes(lifecycle.pid)
    policy_rss_before = rss_bytes(policy.pid) if policy else 0
    results["create"] = await timed_many(agents, args.concurrency, create)
    if failed:
        raise SystemExit(f"{len(failed)} creates did not end READY, e.g. {failed[0]}")
    if moves:
        await moves_and_listing(args, ids, stub, server, cluster, results)
    await channel.close()

    # (e) what it all weighs.
    await asyncio.sleep(1.0)  # let the event publishers drain before reading memory
    results["rss"] = rss_bytes(lifecycle.pid) - rss_before
    results["rss_total"] = rss_bytes(lifecycle.pid)
    results["kv_records"] = await kv_bytes(server.url, "KV_symbi_lifecycle_agents")
    results["kv_definitions"] = await kv_bytes(server.url, "KV_symbi_lifecycle_definitions")
    if policy:
        results["policy_rss"] = rss_bytes(policy.pid) - policy_rss_before
        results["policy_kv"] = await kv_bytes(server.url, "KV_symbi_policy")
    return results


async def moves_and_listing(
    args: argparse.Namespace,
    ids: list[str],
    stub: Any,
    server: Any,
    cluster: Any,
    results: dict[str, Any],
) -> None:
    from symbi_common.bus import BusEndpoint

    sample = ids[: min(len(ids), args.transitions // 2)]

    async def round_trip(i: int) -> None:
        agent_id = sample[i % len(sample)]
        method = stub.Suspend if (i // len(sample)) % 2 == 0 else stub.Resume
        await method(lifecycle_pb2.TransitionRequest(id=agent_id), timeout=60)

    results["transition"] = await timed_many(len(sample) * 2, args.concurrency, round_trip)

    # Task statuses from a simulated node: STARTED then SUCCEEDED per agent.
    credentials = cluster.authority.issue("node-bench", "node")
    nc = await nats.connect(server.url)
    endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials)
    loop = asyncio.create_task(endpoint.run())
    try:
        while endpoint.bus.groups.latest("platform") is None:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.05)
        status_sample = ids[len(sample) : len(sample) + args.statuses // 2]

        async def statuses(i: int) -> None:
            agent_id = status_sample[i]
            for state in (
                events_pb2.TaskStatus.STATE_STARTED,
                events_pb2.TaskStatus.STATE_SUCCEEDED,
            ):
                await endpoint.bus.publish(
                    "platform",
                    events_pb2.TaskStatus(
                        task_id=f"task-{agent_id}",
                        agent_id=agent_id,
                        state=state,
                        node_id="node-bench",
                    ),
                    subject=f"symbi.task.status.task-{agent_id}",
                )

        started = time.perf_counter()
        published = await timed_many(len(status_sample), args.concurrency, statuses)
        completed = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            completed = 0
            # A finished run completes an agent, or leaves a scheduled one waiting.
            for state in (lifecycle_pb2.AGENT_STATE_COMPLETED, lifecycle_pb2.AGENT_STATE_WAITING):
                listing = await stub.ListAgents(
                    lifecycle_pb2.ListAgentsRequest(
                        state=state, page=common_pb2.PageRequest(page_size=1)
                    ),
                    timeout=30,
                )
                completed += listing.total
            if completed >= len(status_sample):
                break
            await asyncio.sleep(0.02)
        applied = Timing(
            len(status_sample) * 2, time.perf_counter() - started, published.latencies_ms
        )
        results["statuses"] = applied
        results["statuses_completed"] = (completed, len(status_sample))
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await nc.close()

    # (d) the whole listing, a page at a time.
    started = time.perf_counter()
    token, listed, pages = "", 0, 0
    while True:
        response = await stub.ListAgents(
            lifecycle_pb2.ListAgentsRequest(
                page=common_pb2.PageRequest(page_size=1000, page_token=token)
            ),
            timeout=60,
        )
        listed += len(response.agents)
        pages += 1
        token = response.page.next_page_token
        if not token:
            break
    results["list"] = (listed, pages, time.perf_counter() - started)


def weight(agents: int, results: dict[str, Any]) -> tuple[float, list[str]]:
    """Control-plane bytes per agent, and the lines that show how they add up."""
    count = agents + len(EXAMPLES)  # with the warm-up agents
    record_bytes, record_messages = results["kv_records"]
    definition_bytes, _ = results["kv_definitions"]
    per_agent_kv = (record_bytes + definition_bytes) / count
    per_agent_rss = max(results["rss"], 0) / agents
    lines = [
        f"(e) lifecycle KV: {record_bytes / count:,.0f} B record with history "
        f"({record_messages / count:.1f} revisions) + {definition_bytes / count:,.0f} B "
        f"definition = {per_agent_kv:,.0f} B per agent",
        f"(e) lifecycle memory: +{results['rss'] / 1e6:.1f} MB for {agents} agents = "
        f"{per_agent_rss:,.0f} B per agent (process RSS {results['rss_total'] / 1e6:.0f} MB)",
    ]
    total = per_agent_kv + per_agent_rss
    if "policy_rss" in results:
        policy_bytes, _ = results["policy_kv"]
        policy_kv = policy_bytes / count
        policy_rss = max(results["policy_rss"], 0) / agents
        lines.append(
            f"(e) policy service: {policy_kv:,.0f} B KV + {policy_rss:,.0f} B memory per agent"
        )
        total += policy_kv + policy_rss
    return total, lines


def report(
    args: argparse.Namespace,
    base: tuple[Timing, Timing],
    alone: dict[str, Any],
    with_policy: dict[str, Any] | None,
) -> None:
    raw_create, raw_update = base
    create, transition, statuses = alone["create"], alone["transition"], alone["statuses"]
    print(
        f"\nlifecycle: {args.agents} agents, {args.concurrency} calls in flight, "
        "policy enforcement off"
    )
    print(raw_create.line("(a) raw KV create (baseline)"))
    print(raw_update.line("(a) raw KV compare-and-set"))
    print(create.line("(b) CreateAgent → READY"))
    print(transition.line("(c) Suspend/Resume transitions"))
    completed, total = alone["statuses_completed"]
    print(
        f"{'(c) task statuses applied':<34} {statuses.rate:>9.0f}/s  "
        f"({statuses.count} statuses, {completed}/{total} agents finished)"
    )
    listed, pages, seconds = alone["list"]
    print(f"{'(d) list every agent':<34} {listed} agents in {pages} pages, {seconds * 1000:.0f} ms")
    print(
        f"ratios to (a): create {create.rate / raw_create.rate:.3f}x raw KV create, "
        f"transition {transition.rate / raw_update.rate:.3f}x raw compare-and-set"
    )
    per_agent, lines = weight(args.agents, alone)
    for line in lines:
        print(line)
    print(f"control plane per agent, lifecycle alone: {per_agent / 1e3:,.1f} KB")
    if with_policy is not None:
        print(
            f"\nwith a policy service: {args.policy_agents} agents, {args.concurrency} calls "
            "in flight (register, decide, install Cedar per create)"
        )
        print(with_policy["create"].line("(b) CreateAgent → READY"))
        print(
            f"ratio to (a): create {with_policy['create'].rate / raw_create.rate:.3f}x raw "
            "KV create"
        )
        per_agent, lines = weight(args.policy_agents, with_policy)
        for line in lines:
            print(line)
        print(f"control plane per agent, with its policy: {per_agent / 1e3:,.1f} KB")
    print(f"target ≤ 5 MB per agent: {per_agent / 5e6:.2%} of it used")
    print(f"lifecycle bytes per agent: {per_agent:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--policy-agents", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--transitions", type=int, default=4_000)
    parser.add_argument("--statuses", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="500 agents, 200 with policy")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.policy_agents, args.transitions, args.statuses = 500, 200, 400, 200
    record = (ROOT / "examples" / "agents" / "researcher.symbi").read_bytes()[:600]
    with tempfile.TemporaryDirectory(prefix="symbi-bench-lifecycle-") as tmp:
        with platform(Path(tmp) / "alone", with_policy=False) as (server, cluster, lifecycle, _):
            base = asyncio.run(baseline(server.url, args.agents, args.concurrency, record))
            alone = asyncio.run(
                exercise(args, args.agents, server, cluster, lifecycle, None, moves=True)
            )
        with_policy = None
        if args.policy_agents:
            with platform(Path(tmp) / "policy", with_policy=True) as (
                server,
                cluster,
                lifecycle,
                policy,
            ):
                with_policy = asyncio.run(
                    exercise(
                        args, args.policy_agents, server, cluster, lifecycle, policy, moves=False
                    )
                )
    report(args, base, alone, with_policy)


if __name__ == "__main__":
    main()
